#!/usr/bin/python3
# Virtual odmfuse.sh --noburn (fuseline's virtual line): builds the offline fuse package fuseblob.tbz2 the way
# shared/reference/jetson-fuses.md §6 describes NVIDIA's R36.2 script, including the p3768 board-config quirk
# (the lower-case board_sku and board_FAB globals that offline mode never sets).  Only --noburn is modelled.
import os
import secrets
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile

sys.dont_write_bytecode = True
LFT = os.path.dirname(os.path.abspath(sys.argv[0]))
BL = os.path.join(LFT, 'bootloader')
sys.path.insert(0, BL)
import vline_hw as hw  # noqa: E402

TOOLS = ['tegraflash.py', 'tegrarcm_v2', 'tegraparser_v2', 'vline_hw.py', 'vline.conf']
OFFLINE_VARS = ['FAB', 'BOARDID', 'BOARDSKU', 'BOARDREV', 'CHIPREV']

# board -> (chip, BOARDID, SKUs, module config stem, carrier, bpmp dtb, bootloader dtb, needs quirk vars)
BOARDS = {
    'jetson-orin-nano-devkit': ('t234', '3767', ('0000', '0001', '0003', '0004', '0005'), 'p3767-0000',
                                'tegra234-bpmp-3767-{sku}-3768-0000.dtb',
                                'tegra234-p3768-0000+p3767-{sku}-nv.dtb', True),
    'jetson-agx-orin-devkit': ('t234', '3701', ('0000', '0004', '0005'), 'p3701-0000',
                               'tegra234-bpmp-3701-{sku}-3737-0000.dtb',
                               'tegra234-p3737-0000+p3701-{sku}-nv.dtb', False),
    'jetson-agx-xavier-devkit': ('t194', '2888', ('0001', '0004', '0005'), 'p2888-0001',
                                 'tegra194-a02-bpmp-p2888-a04.dtb', 'tegra194-p2888-0001-p2822-0000.dtb', False),
}


class Fail(Exception):
    pass


def t234_args(mod, bldtb, bpmpdtb, xml):
    b = ('psc_fw pscfw_t234_prod.bin; mts_mce mce_flash_o10_cr_prod.bin; mb2_applet applet_t234.bin; '
         'mb2_bootloader fskp_t234_updated.bin; xusb_fw xusb_t234_prod.bin; dce_fw display-t234-dce.bin; '
         'nvdec nvdec_t234_prod.fw; bpmp_fw bpmp_t234-TE990M-A1_prod.bin; bpmp_fw_dtb %s; '
         'sce_fw camera-rtcpu-sce.img; rce_fw camera-rtcpu-t234-rce.img; ape_fw adsp-fw.bin; '
         'spe_fw spe_t234.bin; tos tos-optee_t234.img; eks eks_t234.img' % bpmpdtb)
    m = mod
    return ('--bl uefi_jetson_with_dtb.bin --sdram_config tegra234-%s-sdram-l4t.dts,tegra234-%s-wb0sdram-l4t.dts '
            '--odmdata gbe-uphy-config-8,hsstp-lane-map-3,hsio-uphy-config-0 --overlay_dtb L4TConfiguration.dtbo '
            '--bldtb %s --applet mb1_t234_prod.bin --cmd "%s" --cfg readinfo_t234_min_prod.xml --chip 0x23 0 '
            '--concat_cpubl_bldtb --cpubl uefi_jetson.bin --minratchet_config tegra234-mb1-bct-ratchet-%s.dts '
            '--device_config tegra234-mb1-bct-device-%s.dts --misc_config tegra234-mb1-bct-misc-%s.dts '
            '--pinmux_config tegra234-mb1-bct-pinmux-%s.dtsi --gpioint_config tegra234-mb1-bct-gpioint-%s.dts '
            '--pmic_config tegra234-mb1-bct-pmic-%s.dts --pmc_config tegra234-mb1-bct-padvoltage-%s.dtsi '
            '--deviceprod_config tegra234-mb1-bct-cprod-%s.dts --prod_config tegra234-mb1-bct-prod-%s.dts '
            '--scr_config tegra234-mb2-bct-scr-%s.dts --br_cmd_config tegra234-mb1-bct-reset-%s.dts '
            '--dev_params tegra234-br-bct-%s-l4t.dts --mb2bct_cfg tegra234-mb2-bct-misc-%s.dts --bins "%s" '
            '--secondary_gpt_backup --bct_backup --boot_chain A'
            % (m, m, bldtb, xml, m, m, m, m, m, m, m, m, m, m, m, m, m, b))


def t194_args(bpmpdtb, xml):
    b = ('mb2_bootloader nvtboot_recovery_t194.bin; mts_preboot preboot_c10_prod_cr.bin; '
         'mts_mce mce_c10_prod_cr.bin; mts_proper mts_c10_prod_cr.bin; bpmp_fw bpmp-2_t194.bin; '
         'bpmp_fw_dtb %s; spe_fw spe_t194.bin; tlk tos-optee_t194.img; eks eks.img' % bpmpdtb)
    return ('--bl nvtboot_recovery_cpu_t194.bin --sdram_config tegra194-mb1-bct-memcfg-p2888.cfg '
            '--odmdata 0x9190000 --applet mb1_t194_prod.bin --cmd "%s" --soft_fuses tegra194-mb1-soft-fuses-l4t.cfg '
            '--cfg readinfo_t194_min_prod.xml --chip 0x19 0 --misc_config tegra194-mb1-bct-misc-flash.cfg '
            '--pinmux_config tegra19x-mb1-pinmux-p2888-0000-a04-p2822-0000-b01.cfg '
            '--pmic_config tegra194-mb1-bct-pmic-p2888-0001-a04-E-0-p2822-0000.cfg '
            '--pmc_config tegra19x-mb1-padvoltage-p2888-0000-a00-p2822-0000-a00.cfg '
            '--prod_config tegra19x-mb1-prod-p2888-0000-p2822-0000.cfg --scr_config tegra194-mb1-bct-scr-cbb-mini.cfg '
            '--br_cmd_config tegra194-mb1-bct-reset-p2888-0000-p2822-0000.cfg --dev_params tegra194-br-bct-sdmmc.cfg '
            '--bins "%s"' % (xml, b))


def named_files(args):
    """The files a tegraflash argument string names (what the package must carry)."""
    w = shlex.split(args)
    files = []
    i = 0
    while i < len(w):
        if w[i] == '--bins':
            files += [e.split()[1] for e in w[i + 1].split(';')]
            i += 2
        elif w[i] in ('--bl', '--applet', '--cfg', '--cpubl', '--bldtb', '--sdram_config', '--overlay_dtb',
                      '--minratchet_config', '--device_config', '--misc_config', '--pinmux_config',
                      '--gpioint_config', '--pmic_config', '--pmc_config', '--deviceprod_config', '--prod_config',
                      '--scr_config', '--wb0sdram_config', '--br_cmd_config', '--dev_params', '--mb2bct_cfg',
                      '--soft_fuses'):
            files += w[i + 1].split(',')
            i += 2
        else:
            i += 1
    return files


def parse(argv):
    o = {'noburn': False, 'chip': None, 'xml': None, 'auth': None, 'key': None, 'test': False, 'board': None}
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == '--noburn':
            o['noburn'] = True
        elif a == '--test':
            o['test'] = True
        elif a in ('-i', '-X', '--auth', '-k') and i + 1 < len(argv):
            o[{'-i': 'chip', '-X': 'xml', '--auth': 'auth', '-k': 'key'}[a]] = argv[i + 1]
            i += 1
        elif a.startswith('-'):
            raise Fail('option %s is not modelled by the virtual odmfuse.sh (use -X with a fuse XML)' % a)
        elif o['board'] is None:
            o['board'] = a
        else:
            raise Fail('unexpected argument %s' % a)
        i += 1
    if not o['noburn']:
        raise Fail('the virtual odmfuse.sh supports --noburn only')
    if o['board'] is None:
        raise Fail('no board name given')
    if o['board'] not in BOARDS:
        raise Fail('board %s is not in the virtual BSP (%s)' % (o['board'], ', '.join(sorted(BOARDS))))
    if o['chip'] not in ('0x23', '0x19'):
        raise Fail('-i %s: need 0x23 or 0x19' % o['chip'])
    if o['auth'] not in ('NS', 'PKC', 'SBKPKC'):
        raise Fail('--auth %s: offline mode needs --auth NS|PKC|SBKPKC' % o['auth'])
    if o['auth'] != 'NS':
        if not o['key']:
            raise Fail('--auth %s needs -k <pem> to sign the loader images' % o['auth'])
        try:
            with open(o['key']) as f:
                if '-----BEGIN' not in f.read(4096):
                    raise Fail('-k %s: not a PEM file' % o['key'])
        except OSError as e:
            raise Fail('-k %s: %s' % (o['key'], e.strerror))
    if not o['xml']:
        raise Fail('the virtual odmfuse.sh needs -X <fuse xml>')
    return o


def build(o):
    chip, boardid, skus, mod, bpmp, bldtb, quirk = BOARDS[o['board']]
    if {'0x23': 't234', '0x19': 't194'}[o['chip']] != chip:
        raise Fail('-i %s does not match board %s (%s)' % (o['chip'], o['board'], chip.upper()))
    need = OFFLINE_VARS + (['CHIP_SKU'] if chip == 't234' else [])
    missing = [v for v in need if not os.environ.get(v)]
    if missing:
        raise Fail('offline mode needs %s in the environment (missing: %s)' % (', '.join(need), ', '.join(missing)))
    if os.environ['BOARDID'] != boardid:
        raise Fail('BOARDID %s does not fit board %s (%s)' % (os.environ['BOARDID'], o['board'], boardid))
    sku = os.environ['BOARDSKU']
    if quirk:
        # R36.2 p3768 board config: it selects the module by the lower-case globals, which --noburn never sets.
        sku = os.environ.get('board_sku', '')
        if sku not in skus or not os.environ.get('board_FAB'):
            print('Error: Unrecognized module SKU')
            return 1
    if sku not in skus:
        raise Fail('BOARDSKU %s is not a %s SKU (%s)' % (sku, o['board'], ' '.join(skus)))
    magic, version, fuses = hw.parse_fuse_xml(o['xml'])
    if magic != hw.MAGIC_FUSE:
        raise Fail('%s: MagicId 0x%08x: the input XML must carry 0x%08x' % (o['xml'], magic, hw.MAGIC_FUSE))
    with open(o['xml']) as f:
        text = f.read()
    if o['test'] and chip == 't234':
        # --test on T234: the TEST MagicId; the FSKP firmware then burns nothing.
        text = text.replace('0x45535546', '0x54534554').replace('0X45535546', '0x54534554')
    for t in TOOLS:
        if not os.path.isfile(os.path.join(BL, t)):
            raise Fail('%s missing (set the virtual BSP up with `vline init`)' % os.path.join(BL, t))

    print('*** Preparing the offline fuse package for %s (%s, auth %s%s) ***'
          % (o['board'], chip.upper(), o['auth'], ', test mode' if o['test'] else ''))
    work = tempfile.mkdtemp(prefix='.odmfuse.', dir=LFT)
    try:
        bl = os.path.join(work, 'bootloader')
        os.mkdir(bl)
        xmlname = 'fuse_%s.xml' % secrets.token_hex(3)
        with open(os.path.join(bl, xmlname), 'w') as f:
            f.write(text)
        cmd = ('burnfuses dummy %s' if (o['test'] and chip == 't194') else 'burnfuses %s') % xmlname
        if chip == 't234':
            args = t234_args(mod, bldtb.format(sku=sku), bpmp.format(sku=sku), cmd)
        else:
            args = t194_args(bpmp, cmd)
        tp = os.path.join(BL, 'tegraparser_v2')
        chiparg = ['--chip', o['chip'], '0']
        if chip == 't234':
            hw.unlink_write(os.path.join(bl, 'fskp_t234.bin'), hw.fskp_base_image())
            for argv in ([tp] + chiparg + ['--fuse_info', xmlname, 'fuse_info_t234.blob'],
                         [tp] + chiparg + ['--fskp_info', 'fskp_t234.bin', 'fuse_info_t234.blob']):
                r = subprocess.run(argv, cwd=bl, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   universal_newlines=True)
                sys.stdout.write(r.stdout)
                if r.returncode != 0:
                    raise Fail('%s exited %d' % (' '.join(os.path.basename(a) for a in argv), r.returncode))
            os.unlink(os.path.join(bl, 'fskp_t234.bin'))
            os.unlink(os.path.join(bl, 'fuse_info_t234.blob'))
        else:
            # T194 burns the XML itself; check that the parser takes it now rather than on the line.
            r = subprocess.run([tp] + chiparg + ['--fuse_info', xmlname, 'fuse_check.blob'], cwd=bl,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
            sys.stdout.write(r.stdout)
            if r.returncode != 0:
                raise Fail('tegraparser_v2 --fuse_info exited %d' % r.returncode)
            os.unlink(os.path.join(bl, 'fuse_check.blob'))
        for f in named_files(args):
            if not os.path.exists(os.path.join(bl, f)):
                hw.unlink_write(os.path.join(bl, f), hw.placeholder(f))
        for t in TOOLS:
            shutil.copy2(os.path.join(BL, t), os.path.join(bl, t))
        with open(os.path.join(bl, 'fusecmd.sh'), 'w') as f:
            f.write('#!/bin/bash\nexport PATH=.:${PATH}\n')
            f.write("eval './tegraflash.py %s'\n" % args)
        os.chmod(os.path.join(bl, 'fusecmd.sh'), 0o755)
        out = os.path.join(LFT, 'fuseblob.tbz2')
        tmp = out + '.tmp'
        with tarfile.open(tmp, 'w:bz2') as tar:
            tar.add(bl, arcname='bootloader', recursive=False)
            for f in sorted(os.listdir(bl)):
                tar.add(os.path.join(bl, f), arcname='bootloader/' + f)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print('*** The fuse package is %s; run bootloader/fusecmd.sh from it on the factory host ***' % out)
    return 0


def main(argv):
    try:
        return build(parse(argv))
    except (Fail, hw.VlineError) as e:
        print('Error: %s' % e)
        return 1


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
