"""Credit-scoring research pipeline: probability of default for auto-loan applications.

Importing the package is cheap on purpose: the exported model ships it as code, and the
command line and the stages import only the modules they use.
"""

import os as _os

# OpenMP reads its wait policy once, when XGBoost's runtime loads, so it must be set before
# any submodule imports xgboost. Spinning waits (the default) made a 2-thread XGBoost team
# 15-25x slower beside another busy process on a 2-core machine; a value set by the user wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
