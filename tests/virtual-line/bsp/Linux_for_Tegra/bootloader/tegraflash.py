#!/usr/bin/python3
# Virtual tegraflash.py (fuseline's virtual line).  Accepts the board arguments of an odmfuse.sh --noburn
# fusecmd.sh line plus --instance and runs --cmd "burnfuses …", "readfuses OUT XML" and "reboot recovery" the
# way shared/reference/jetson-fuses.md §6 describes NVIDIA's R36.2 tool, traps included:
#  - a temporary working directory bootloader/<pid>/ into which every file of bootloader/ is linked (so a
#    stale rcm_state leaks in); removed on a normal exit, left behind when the process is killed;
#  - every run calls tegrarcm_v2 with no arguments, then --ismb2applet; exit 0 there (applet running, or a
#    stale rcm_state <= 7) skips the BootROM steps: burnfuses then burns nothing and still says Finish;
#  - readfuses swallows its own errors (with no device: exit 0, no output file) and writes its output file
#    line by line (a run that dies leaves a partial file);
#  - burnfuses' exit status says nothing about the fuses; no timeouts anywhere.
# Each tool runs as its own process, in this process's process group.
import os
import shlex
import shutil
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(sys.argv[0])))
import vline_hw as hw  # noqa: E402

T0 = time.monotonic()
BOOL_OPTS = {'--concat_cpubl_bldtb', '--skipuid', '--secondary_gpt_backup', '--bct_backup',
             '--trim_bpmp_dtb', '--external_device'}
FILE_OPTS = {'--bl', '--applet', '--cfg', '--cpubl', '--bldtb', '--sdram_config', '--overlay_dtb',
             '--minratchet_config', '--device_config', '--misc_config', '--pinmux_config', '--gpioint_config',
             '--pmic_config', '--pmc_config', '--deviceprod_config', '--prod_config', '--scr_config',
             '--wb0sdram_config', '--br_cmd_config', '--dev_params', '--mb2bct_cfg', '--soft_fuses',
             '--key', '--encrypt_key'}


class StepFailed(Exception):
    def __init__(self, rc, what):
        Exception.__init__(self, what)
        self.rc = rc


def log(s):
    sys.stdout.write('[ %8.4f ] %s\n' % (time.monotonic() - T0, s))
    sys.stdout.flush()


def parse(argv):
    o = {'chip': None, 'cmd': None, 'instance': None, 'bins': [], 'files': [], 'skipuid': False}
    i = 0
    while i < len(argv):
        x = argv[i]
        if x == '--chip' and i + 1 < len(argv):
            words = argv[i + 1].split()
            o['chip'] = hw.chip_from_arg(words[0])
            i += 2
            if len(words) == 1 and i < len(argv) and argv[i].isdigit():
                i += 1
        elif x in BOOL_OPTS:
            if x == '--skipuid':
                o['skipuid'] = True
            i += 1
        elif x.startswith('--') and i + 1 < len(argv):
            v = argv[i + 1]
            if x == '--cmd':
                o['cmd'] = v
            elif x == '--instance':
                o['instance'] = v
            elif x == '--bins':
                for ent in v.split(';'):
                    w = ent.split()
                    if len(w) != 2:
                        raise hw.VlineError('--bins: bad entry %r' % ent)
                    o['bins'].append((w[0], w[1]))
            elif x in FILE_OPTS:
                o['files'] += [f for f in v.split(',') if f]
            i += 2
        else:
            raise hw.VlineError('unexpected argument %r' % x)
    if o['chip'] is None:
        raise hw.VlineError('--chip is required')
    if not o['cmd']:
        raise hw.VlineError('--cmd is required')
    return o


def run(tool, args, check=True):
    argv = ['./' + tool] + args
    log(' '.join([tool] + [shlex.quote(a) for a in args]))
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    lines = []
    for line in p.stdout:
        line = line.rstrip('\n')
        lines.append(line)
        if line:
            log(line)
    rc = p.wait()
    if check and rc != 0:
        raise StepFailed(rc, ' '.join([tool] + args))
    return rc, lines


class Flash:
    def __init__(self, o, home):
        self.o = o
        self.home = home
        self.chip = o['chip']
        self.chiparg = ['--chip', '0x' + hw.CHIP_HEX[self.chip], '0']
        self.inst = ['--instance', o['instance']] if o['instance'] else []
        self.conf = hw.load_conf(home)

    def gen(self, name, data=None):
        hw.unlink_write(name, hw.placeholder(name) if data is None else data)

    def ismb2applet(self):
        rc, _ = run('tegrarcm_v2', self.inst + self.chiparg + ['--ismb2applet'], check=False)
        return rc == 0

    def bootrom(self):
        log('Generating RCM messages')
        if self.chip == 't234':
            dl = [('bct_br', 'br_bct_BR.bct'), ('mb1', 'mb1_t234_prod_aligned_sigheader.bin.encrypt'),
                  ('psc_bl1', 'psc_bl1_t234_prod_aligned_sigheader.bin.encrypt'),
                  ('bct_mb1', 'mb1_bct_MB1_sigheader.bct.encrypt')]
        else:
            dl = [('bct_bootrom', 'br_bct_BR.bct'), ('mb1', 'mb1_t194_prod_sigheader.bin.encrypt'),
                  ('bct_mb1', 'mb1_cold_boot_bct_MB1_sigheader.bct.encrypt')]
        args = self.inst + ['--new_session'] + self.chiparg
        # T234: the BootROM step always asks for the UID (no --skipuid branch); T194 honours --skipuid.
        if self.chip == 't234' or not self.o['skipuid']:
            args.append('--uid')
        for t, f in dl:
            self.gen(f)
            args += ['--download', t, f]
        log('Boot Rom communication')
        run('tegrarcm_v2', args)

    def mb2(self):
        """Sends MB2 (the FSKP image on T234) in the RCM blob: bct_mem + blob."""
        self.gen('mem_rcm_sigheader.bct.encrypt')
        ents = []
        for name, f in self.o['bins']:
            with open(f, 'rb') as fh:
                ents.append((name, fh.read()))
        self.gen('blob.bin', hw.pack_rcm_blob(ents))
        log('Sending bct_mem and the RCM blob')
        run('tegrarcm_v2', self.inst + self.chiparg + ['--pollbl', '--download', 'bct_mem',
                                                        'mem_rcm_sigheader.bct.encrypt', '--download', 'blob',
                                                        'blob.bin'])

    def burn_fault_exit(self):
        if self.o['instance'] and hw.has_fault(self.conf['hw'], self.o['instance'], 'exit-burn'):
            log('Error: Return value 1')
            raise StepFailed(1, 'burnfuses')

    def burnfuses(self, words):
        dummy = len(words) > 1 and words[1] == 'dummy'
        rest = words[2:] if dummy else words[1:]
        if self.chip == 't234':
            if dummy or (rest and rest[0] == 'fskp'):
                raise hw.VlineError('burnfuses %s is not modelled on T234 by the virtual line' % words[1])
            # The XML argument is ignored on T234: the fuses travel in the mb2_bootloader image.
        else:
            if len(rest) != 1:
                raise hw.VlineError('burnfuses on T194 needs one fuse XML')
            run('tegraparser_v2', self.chiparg + ['--fuse_info', self.path(rest[0]), 'fuse_info.blob'])
        if self.ismb2applet():
            log('Burning fuses')
            log('The result of the fuse burn is on the UART only')
            log('Finish')
            return
        self.bootrom()
        self.mb2()
        if self.chip == 't194':
            run('tegrarcm_v2', self.inst + self.chiparg + ['--oem', 'burnfuses'] + (['dummy'] if dummy else [])
                + ['fuse_info.blob'])
        log('Burning fuses')
        log('The result of the fuse burn is on the UART only')
        self.burn_fault_exit()
        log('Finish')

    def path(self, p):
        return p if os.path.isabs(p) else os.path.join(self.home, p)

    def readfuses(self, words):
        if len(words) != 3:
            raise hw.VlineError('readfuses needs OUT and XML')
        outp, xml = self.path(words[1]), self.path(words[2])
        try:
            if not self.ismb2applet():
                self.bootrom()
                self.gen('applet_%s_sigheader.bin.encrypt' % self.chip)
                run('tegrarcm_v2', self.inst + self.chiparg + ['--pollbl', '--download', 'applet',
                                                                'applet_%s_sigheader.bin.encrypt' % self.chip])
                for n in range(30):
                    if self.ismb2applet():
                        break
                    time.sleep(1)
                else:
                    log('Error: mb2 applet is not running')
                    return
            run('tegraparser_v2', self.chiparg + ['--get_fuse_names', xml, 'names.txt'])
            with open('names.txt') as f:
                names = [n.strip() for n in f if n.strip()]
            out = None
            try:
                for name in names:
                    pa = [] if self.chip == 't234' else self.chiparg
                    run('tegraparser_v2', pa + ['--read_fusetype', name, 'read_fuse.bin'])
                    try:
                        os.unlink('__fuse_read_scatter.bin')
                    except FileNotFoundError:
                        pass
                    run('tegrarcm_v2', self.inst + self.chiparg + ['--oem', 'readfuses', '__fuse_read_scatter.bin',
                                                                    'read_fuse.bin'])
                    with open('__fuse_read_scatter.bin', 'rb') as f:
                        raw = f.read()
                    line = '%s: %s\n' % (name, hw.decode_value(len(raw), raw) if raw else '')
                    if out is None:
                        out = open(outp, 'w')
                    out.write(line)
                    out.flush()
            finally:
                if out is not None:
                    out.close()
            log('Fuses read into %s' % words[1])
            if self.o['instance']:
                hw.readfuses_completed(self.conf['hw'], self.o['instance'])
        except (StepFailed, hw.VlineError, OSError) as e:
            # NVIDIA's readfuses swallows its errors: the run goes on and may still exit 0.
            log('Error: readfuses failed: %s' % e)

    def reboot(self, words):
        if words[1:] != ['recovery']:
            raise hw.VlineError('reboot %s is not modelled' % ' '.join(words[1:]))
        run('tegrarcm_v2', self.inst + self.chiparg + ['--reboot', 'recovery'])


def link_bootloader(home, work):
    os.mkdir(work)
    for f in sorted(os.listdir(home)):
        src = os.path.join(home, f)
        if not os.path.isfile(src) or f == '__pycache__':
            continue
        try:
            os.link(src, os.path.join(work, f))
        except OSError:
            shutil.copy2(src, os.path.join(work, f))


def main(argv):
    log('Welcome to the virtual Tegra Flash (fuseline virtual line)')
    o = parse(argv)
    home = os.getcwd()
    for f in o['files'] + [f for _, f in o['bins']]:
        if not os.path.isfile(f):
            raise hw.VlineError('cannot find file %s' % f)
    fl = Flash(o, home)
    work = os.path.join(home, str(os.getpid()))
    link_bootloader(home, work)
    os.chdir(work)
    rc = 0
    try:
        run('tegrarcm_v2', [], check=False)
        for c in o['cmd'].split(';'):
            words = c.split()
            if not words:
                continue
            log('tegraflash: %s' % ' '.join(words))
            if words[0] == 'burnfuses':
                fl.burnfuses(words)
            elif words[0] == 'readfuses':
                fl.readfuses(words)
            elif words[0] == 'reboot':
                fl.reboot(words)
            else:
                raise hw.VlineError('command %r is not modelled by the virtual line' % words[0])
    except StepFailed as e:
        log('Error: Return value %d' % e.rc)
        log('Command %s' % e)
        rc = 1
    except (hw.VlineError, OSError) as e:
        log('Error: %s' % e)
        rc = 1
    finally:
        os.chdir(home)
        shutil.rmtree(work, ignore_errors=True)
    return rc


if __name__ == '__main__':
    try:
        sys.exit(main(sys.argv[1:]))
    except hw.VlineError as e:
        log('Error: %s' % e)
        sys.exit(1)
