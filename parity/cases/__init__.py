"""One module per reference library; each registers its cases on import (see ``harness.all_cases``)."""
