#!/bin/bash
eval './tegraflash.py --b0oot_recovery_cpu_t194.bin rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr--sdram_config a.cfg,b.cfg --odmdata 0x9190000 --/../bins "--instancem[2_boorrrrrrrrrrrrrrrrrrrrrrrr--sdram_config a.cfg,b preboot_c10_prod_cr.bin" --chip "0x19 0" --cmd "burnfuses dummy fuse_Xy9.xml"'
