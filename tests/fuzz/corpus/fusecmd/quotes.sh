#!/bin/bash
eval './tegraflash.py --chip 0x23 --odmdata a"b \"c\\ \$"d --bins "mb2_bootloader m.bin" --cmd "burnfuses f.xml"'
