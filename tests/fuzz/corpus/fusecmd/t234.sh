#!/bin/bash
export PATH=.:${PATH}
eval './tegraflash.py --bl uefi_jetson_with_dtb.bin --sdram_config tegra234-p3767-0000-sdram.dts --odmdata gbe-uphy-config-8 --bins "mb2_bootloader fskp_t234_updated.bin; mts_mce mce_flash_o10_cr_prod.bin" --cfg flash.xml --chip 0x23 --concat_cpubl_bldtb --cpubl uefi_jetson.bin --cmd "burnfuses fuse_AbC123.xml"'
