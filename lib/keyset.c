/* keyset.c — (being written) */
#include "keyset.h"
