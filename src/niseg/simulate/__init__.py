"""Forward models that make images with exact ground truth.

So far: thermal-neutron radiographs of phantoms made of simple solids (Beer–Lambert
attenuation, Poisson counting statistics, a smooth beam profile and detector blur).

- :data:`MATERIALS`, :class:`Material`, :func:`attenuation_coefficient`,
  :func:`get_material`: attenuation coefficients derived from cross sections;
- :class:`Cylinder`, :class:`Sphere`, :class:`Plate`, :class:`Phantom`,
  :func:`default_phantom`: objects in physical units, projected thickness and truth labels;
- :func:`simulate_radiograph`, :class:`Radiograph`, :func:`beam_profile`: the detector.

Units: lengths in cm inside phantoms, attenuation coefficients in 1/cm, pixel sizes in µm,
counts in detected neutrons per pixel.
"""

from ._materials import MATERIALS, Material, attenuation_coefficient, get_material
from ._phantom import Cylinder, Phantom, Plate, Sphere, default_phantom
from ._radiograph import Radiograph, beam_profile, simulate_radiograph

__all__ = [
    "MATERIALS",
    "Cylinder",
    "Material",
    "Phantom",
    "Plate",
    "Radiograph",
    "Sphere",
    "attenuation_coefficient",
    "beam_profile",
    "default_phantom",
    "get_material",
    "simulate_radiograph",
]
