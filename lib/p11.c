/* p11.c — PKCS#11 through p11-kit. (being written) */
#include "p11.h"
