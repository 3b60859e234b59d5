"""Forward models that make images with exact ground truth.

So far: thermal-neutron radiographs of phantoms made of simple solids (Beer–Lambert
attenuation, Poisson counting statistics, a smooth beam profile and detector blur).

- :data:`MATERIALS`, :class:`Material`, :func:`attenuation_coefficient`,
  :func:`get_material`: thermal-neutron coefficients from cross sections, X-ray
  coefficients from the NIST tables (10–200 keV);
- :class:`Cylinder`, :class:`Sphere`, :class:`Plate`, :class:`Phantom`,
  :func:`default_phantom`: objects in physical units, projected thickness and truth labels;
  :class:`VolumePhantom`: a label volume imaged along its first axis;
- :func:`simulate_radiograph`, :class:`Radiograph`, :func:`beam_profile`,
  :func:`drift_profile`: the detector (neutrons or X-rays, exposure, dark current and read
  noise, open-beam and dark stacks, flat-field drift, gamma spots);
- :func:`porous_volume`, :func:`porous_phantom`: packed quartz grains, water by saturation;
- :func:`brush_strokes`: scribble labels drawn inside each class of a truth.
- :func:`simulate_tomography`, :func:`simulate_roots`, :func:`simulate_tof`: tomograms
  (volumes or projections), root systems in soil (2D and 3D), time-of-flight cubes with
  Bragg edges (:func:`bragg_edges`, :func:`tof_cross_sections`, :func:`tof_attenuation`,
  :func:`moderator_spectrum`, :data:`CRYSTALS`).

Units: lengths in cm inside phantoms, attenuation coefficients in 1/cm, pixel sizes in µm,
counts in detected neutrons per pixel.
"""

from ._bragg import CRYSTALS, Crystal, bragg_edges, tof_attenuation, tof_cross_sections
from ._materials import MATERIALS, Material, attenuation_coefficient, get_material
from ._phantom import Cylinder, Phantom, Plate, Sphere, default_phantom
from ._porous import POROUS_CLASSES, porous_phantom, porous_volume
from ._radiograph import Radiograph, beam_profile, drift_profile, simulate_radiograph
from ._roots import Roots, simulate_roots
from ._scribbles import brush_strokes
from ._spots import SpotsResult, add_spots, simulate_spots
from ._tof import ToFCube, moderator_spectrum, simulate_tof
from ._tomography import Tomography, simulate_tomography
from ._volume_phantom import VolumePhantom

__all__ = [
    "CRYSTALS",
    "MATERIALS",
    "POROUS_CLASSES",
    "Crystal",
    "Cylinder",
    "Material",
    "Phantom",
    "Plate",
    "Radiograph",
    "Roots",
    "Sphere",
    "SpotsResult",
    "ToFCube",
    "Tomography",
    "VolumePhantom",
    "add_spots",
    "attenuation_coefficient",
    "beam_profile",
    "bragg_edges",
    "brush_strokes",
    "default_phantom",
    "drift_profile",
    "get_material",
    "moderator_spectrum",
    "porous_phantom",
    "porous_volume",
    "simulate_radiograph",
    "simulate_roots",
    "simulate_spots",
    "simulate_tof",
    "simulate_tomography",
    "tof_attenuation",
    "tof_cross_sections",
]
