#!/bin/bash
eval './tegraflash.py --bl nvtboot_recovery_cpu_t194.bin --sdram_config a.cfg,b.cfg --odmdata 0x9190000 --bins "mb2_bootloader nvtboot_recovery_t194.bin; mts_preboot preboot_c10_prod_cr.bin" --chip "0x19 0" --cmd "burnfuses dummy fuse_Xy9.xml"'
