"""Supervised pixel classification: filter features + a scikit-learn classifier.

- :class:`PixelClassifier` -- random forest (default), extra trees, histogram gradient
  boosting, k-NN, decision tree or logistic regression on the features of a
  :class:`niseg.features.FeatureSpec`, trained from sparse labels (brush strokes) or dense
  binary masks; implements the :class:`niseg.models.Segmenter` protocol;
- :data:`METHODS` -- the estimator names ``PixelClassifier(method=...)`` accepts.
"""

from ._estimators import METHODS
from ._pixel import PixelClassifier

__all__ = ["METHODS", "PixelClassifier"]
