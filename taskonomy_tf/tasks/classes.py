"""Class lists that task labels refer to.

Sources:
* ``SEMANTIC``: label ids of Taskonomy's ``segment_semantic`` images: 0 =
  uncertain, 1 = background, 2..17 = the 16 COCO classes of
  ``taskbank/assets/web_assets/pseudosemantics/coco_selected_classes.txt``
  (StanfordVL/taskonomy), as listed by a third-party reproduction that cites
  that file.
* ``PLACES365_KEEP``: indices into the Places-365 output that the original
  loader keeps for scene classification (``class_places_workspace_and_home``
  in ``code/lib/data/load_ops.py``); the 63 names are the same loader's
  ``class_places`` list, in the same (alphabetical) order.
"""

from __future__ import annotations

SEMANTIC: tuple[str, ...] = (
    "uncertain", "background", "bottle", "chair", "couch", "potted_plant",
    "bed", "dining_table", "toilet", "tv", "microwave", "oven", "toaster",
    "sink", "refrigerator", "book", "clock", "vase",
)  # fmt: skip

PLACES365_KEEP: tuple[int, ...] = (
    3, 23, 25, 26, 28, 37, 43, 45, 51, 52, 56, 61, 63, 88, 89, 93, 95, 100,
    102, 106, 121, 124, 126, 129, 131, 133, 135, 156, 165, 176, 177, 179, 182,
    203, 208, 215, 217, 228, 240, 241, 244, 246, 248, 253, 255, 264, 269, 280,
    281, 282, 285, 298, 303, 311, 317, 318, 328, 332, 343, 346, 352, 358, 363,
)  # fmt: skip

SCENES: tuple[str, ...] = (
    "alcove", "assembly_line", "atrium-public", "attic", "auto_factory",
    "bank_vault", "basement", "bathroom", "bedchamber", "bedroom",
    "biology_laboratory", "booth-indoor", "bow_window-indoor",
    "chemistry_lab", "childs_room", "clean_room", "closet", "computer_room",
    "conference_room", "corridor", "dining_room", "dorm_room",
    "dressing_room", "elevator-door", "elevator_shaft", "engine_room",
    "escalator-indoor", "garage-indoor", "greenhouse-indoor", "home_office",
    "home_theater", "hospital_room", "hotel_room", "kitchen", "laundromat",
    "living_room", "lobby", "mezzanine", "nursery", "nursing_home", "office",
    "office_cubicles", "operating_room", "pantry", "parking_garage-indoor",
    "physics_laboratory", "playroom", "reception", "recreation_room",
    "repair_shop", "restaurant_kitchen", "server_room", "shower", "stable",
    "staircase", "storage_room", "television_room", "ticket_booth",
    "utility_room", "veterinarians_office", "waiting_room", "wet_bar",
    "youth_hostel",
)  # fmt: skip

# Number of raw entries in the class files: ImageNet-1k logits and
# Places-365 probabilities (taskonomy data/README).
N_IMAGENET = 1000
N_PLACES365 = 365

# ImageNet-1k indices (the standard class order) of the objects the
# embedded synthetic dataset furnishes rooms with, keyed by SEMANTIC name.
IMAGENET_INDEX: dict[str, int] = {
    "chair": 559,  # folding chair
    "couch": 831,  # studio couch
    "potted_plant": 738,  # pot, flowerpot
    "bed": 564,  # four-poster
    "dining_table": 532,  # dining table
    "toilet": 861,  # toilet seat
    "tv": 851,  # television
    "refrigerator": 760,
    "bottle": 907,  # wine bottle
    "vase": 883,
    "clock": 892,  # wall clock
    "book": 453,  # bookcase
    "sink": 896,  # washbasin
}

CLASS_LISTS: dict[str, tuple[str, ...]] = {
    "semantic": SEMANTIC,
    "places63": SCENES,
}
