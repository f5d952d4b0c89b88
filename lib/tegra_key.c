/* tegra_key.c — (being written) */
#include "tegra_key.h"
