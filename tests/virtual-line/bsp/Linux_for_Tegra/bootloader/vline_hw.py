"""vline_hw: the virtual line's device model, shared by the virtual BSP tools.

Written for fuseline's tests from the facts in shared/reference/jetson-fuses.md (§1, §2, §3, §6, §8) and the
fuse-blob vectors; no code of NVIDIA's is in here.  Each virtual Jetson is a JSON state file
<hw>/<instance>.json, changed only under an exclusive flock on <hw>/<instance>.lock.  The hw directory comes
from vline.conf beside the tool that runs (it travels inside packages and per-device working copies).
"""
import fcntl
import json
import os
import re
import struct
import sys
import time
# xml.etree and hashlib are imported where they are used: every tool call starts a new interpreter, and the
# benchmark runs hundreds of them.

MAGIC_FUSE = 0x45535546
MAGIC_TEST = 0x54534554

CHIP_IDS = {0x23: 't234', 0x19: 't194'}
CHIP_HEX = {'t234': '23', 't194': '19'}

# Module name -> (recovery PID, chip)  (reference §8 table).
MODULES = {
    'agx-orin': (0x7023, 't234'),
    'agx-orin-32gb': (0x7223, 't234'),
    'orin-nx-16gb': (0x7323, 't234'),
    'orin-nx-8gb': (0x7423, 't234'),
    'orin-nano-8gb': (0x7523, 't234'),
    'orin-nano-4gb': (0x7623, 't234'),
    'agx-xavier': (0x7019, 't194'),
    'xavier-nx': (0x7e19, 't194'),
}

# Fuse sizes in bytes per chip (reference §2).  These are the fuses a virtual device has.
SIZES = {
    't234': dict(
        [('OdmId', 8), ('OdmInfo', 4), ('ArmJtagDisable', 4), ('OptInEnable', 4),
         ('PublicKeyHash', 64), ('PkcPubkeyHash1', 64), ('PkcPubkeyHash2', 64),
         ('SecureBootKey', 32), ('Kdk0', 32), ('PscOdmStatic', 4), ('OemK1', 32), ('OemK2', 32),
         ('BootSecurityInfo', 4), ('SecurityMode', 4),
         # OdmLock: in the BSP read list, size not stated for T234; 4 like every other lock word [I].
         ('OdmLock', 4)] + [('ReservedOdm%d' % i, 4) for i in range(8)]),
    't194': dict(
        [('PublicKeyHash', 32), ('SecureBootKey', 16), ('Kek0', 16), ('Kek1', 16), ('Kek2', 16),
         ('Kek256', 32), ('BootSecurityInfo', 4), ('SecurityMode', 4), ('JtagDisable', 4),
         ('OdmLock', 4), ('SwReserved', 4), ('SecBootDeviceSelect', 4), ('DebugAuthentication', 4),
         ('OdmId', 8)] + [('ReservedOdm%d' % i, 4) for i in range(12)]),
}

# Fuse type ids, only those known for sure:
#  T234: read off NVIDIA's tegraparser output in shared/vectors/fuse-blob (and its VECTORS.txt).
#  T194: tegrabl T19x (reference §1, [V S10]).
# Every other name (OemK2, PkcPubkeyHash1, ReservedOdm1..7 on T234, Kek* …) is refused by the virtual
# tegraparser: guessing an id would let a wrong encoder pass.  Names NVIDIA's parser knows but whose id is
# unknown here are refused the same way (exit 4), with a second line saying why.
TYPES = {
    't234': {'BootSecurityInfo': 0x00, 'SecurityMode': 0x1d, 'OdmLock': 0x1e, 'ArmJtagDisable': 0x1f,
             'ReservedOdm0': 0x20, 'PublicKeyHash': 0x2a, 'OdmId': 0x39, 'SecureBootKey': 0x66,
             'OemK1': 0x6a},
    't194': dict([('BootSecurityInfo', 0x00), ('SecurityMode', 0x1d), ('PublicKeyHash', 0x2a),
                  ('SecureBootKey', 0x2b)] + [('ReservedOdm%d' % i, 0x20 + i) for i in range(8)]),
}

# The fTPM's per-device fuses (Kdk0, OdmInfo) need ids too, and NVIDIA's are not known.  The virtual parser
# gives them MADE-UP ids, far from every real one, so that the per-device burn can be exercised: fuseline
# has no id of its own for them and asks the BSP's parser (`--read_fusetype`), so a made-up id here cannot
# make a wrong encoder pass — the encoder takes whatever this parser says.  Never copy these anywhere.
TYPES['t234'].update({'OdmInfo': 0xf1d0, 'Kdk0': 0xf1d1})

# Names NVIDIA's T234-era parser accepts (reference §2 "Names NVIDIA's fuse parser accepts").
NVIDIA_NAMES = set(['ArmJtagDisable', 'BootDevInfo', 'BootSecurityInfo', 'CcplexDfdAccessDisable',
                    'DebugAuthentication', 'EndorsementKey', 'Kdk0', 'Kek0', 'Kek1', 'Kek2', 'Kek256',
                    'OdmId', 'OdmInfo', 'OdmLock', 'OemK1', 'OemK2', 'OptInEnable', 'PkcPubkeyHash1',
                    'PkcPubkeyHash2', 'PscOdmStatic', 'PublicKeyHash', 'SecureBootKey', 'SecurityMode',
                    'SwReserved'] + ['ReservedOdm%d' % i for i in range(12)])

INSTANCE_RE = re.compile(r'^[0-9]{1,3}-[0-9]{1,3}(\.[0-9]{1,3}){0,6}$')


class VlineError(Exception):
    """An error a tool reports as one line and a non-zero exit."""

    def __init__(self, msg, code=1):
        Exception.__init__(self, msg)
        self.code = code


class UnknownFuse(VlineError):
    def __init__(self, name, chip):
        VlineError.__init__(self, 'Not a valid Fuse entry : %s' % name, 4)
        self.name = name
        self.chip = chip


def chip_from_arg(s):
    try:
        v = int(s, 16)
    except ValueError:
        raise VlineError('unknown chip %r' % s)
    if v not in CHIP_IDS:
        raise VlineError('chip %s is not modelled by the virtual line (0x23 T234, 0x19 T194)' % s)
    return CHIP_IDS[v]


# ---------------------------------------------------------------- fuse XML and the fuse blob

def _hexstr(s, what):
    t = s.strip()
    if t[:2] in ('0x', '0X'):
        t = t[2:]
    if not t or not re.fullmatch(r'[0-9a-fA-F]+', t):
        raise VlineError('%s: value %r is not hex' % (what, s))
    return t.lower()


def parse_fuse_xml(path, need_values=True):
    """-> (magic, version string, [(name, size, value-hex-or-None)])."""
    import xml.etree.ElementTree as ET
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as e:
        raise VlineError('%s: cannot parse fuse XML: %s' % (path, e))
    if root.tag != 'genericfuse':
        raise VlineError('%s: root element is <%s>, not <genericfuse>' % (path, root.tag))
    magic_s = root.get('MagicId')
    if magic_s is None:
        raise VlineError('%s: no MagicId' % path)
    magic = int(_hexstr(magic_s, path + ' MagicId'), 16)
    version = root.get('version', '')
    fuses = []
    for el in root:
        if el.tag != 'fuse':
            raise VlineError('%s: element <%s> is not modelled by the virtual line' % (path, el.tag))
        name = el.get('name')
        if not name:
            raise VlineError('%s: a <fuse> without a name' % path)
        size = el.get('size')
        value = el.get('value')
        if need_values:
            if size is None or value is None:
                raise VlineError('%s: fuse %s needs size and value' % (path, name))
            try:
                size = int(size, 0)
            except ValueError:
                raise VlineError('%s: fuse %s: size %r is not a number' % (path, name, el.get('size')))
            value = _hexstr(value, '%s: fuse %s' % (path, name))
        fuses.append((name, size, value))
    return magic, version, fuses


def encode_value(name, size, hexval):
    """XML value -> the bytes the blob (and the device) carry.

    4-byte fuses are little-endian u32; larger ones are the hex string's bytes in the order written (vectors).
    A shorter string is zero-extended on the left, like a number [I: the vectors only show full-width values].
    """
    if int(hexval, 16) >> (8 * size):
        raise VlineError('fuse %s: value 0x%s does not fit in %d bytes' % (name, hexval, size))
    v = int(hexval, 16)
    if size == 4:
        return struct.pack('<I', v)
    return v.to_bytes(size, 'big')


def decode_value(size, raw):
    """Device bytes -> XML big-endian hex, full width, no 0x (the readfuses line format)."""
    if size == 4:
        return '%08x' % struct.unpack('<I', raw)[0]
    return raw.hex()


def compile_blob(chip, magic, fuses):
    """The tegraparser_v2 --fuse_info layout (shared/vectors/fuse-blob/VECTORS.txt)."""
    types = TYPES[chip]
    nodes = []
    data = b''
    for name, size, value in fuses:
        if name not in types:
            raise UnknownFuse(name, chip)
        nodes.append((types[name], size))
        data += encode_value(name, size, value)
    n = len(fuses)
    off = 20 + 12 * n
    total = off + len(data)
    out = struct.pack('>I', magic) + struct.pack('<IIII', 1, total, n, 0x14)
    for t, size in nodes:
        out += struct.pack('<III', t, size, off)
        off += size
    return out + data


def parse_blob(b):
    """-> (magic, [(type, size, raw)]); raises VlineError on a malformed blob."""
    if len(b) < 20:
        raise VlineError('fuse blob too short')
    magic = struct.unpack('>I', b[:4])[0]
    version, total, n, first = struct.unpack('<IIII', b[4:20])
    if magic not in (MAGIC_FUSE, MAGIC_TEST) or version != 1 or total != len(b) or first != 0x14 \
            or 20 + 12 * n > total:
        raise VlineError('malformed fuse blob')
    nodes = []
    for i in range(n):
        t, size, off = struct.unpack('<III', b[20 + 12 * i:32 + 12 * i])
        if off + size > total:
            raise VlineError('malformed fuse blob')
        nodes.append((t, size, b[off:off + size]))
    return magic, nodes


def find_tail_blob(image):
    """The fuse blob appended as the last bytes of an FSKP MB2 image, or None."""
    for m in (b'ESUF', b'TSET'):
        p = len(image)
        while True:
            p = image.rfind(m, 0, p)
            if p < 0:
                break
            if len(image) - p >= 20 and struct.unpack('<I', image[p + 8:p + 12])[0] == len(image) - p:
                try:
                    parse_blob(image[p:])
                    return image[p:]
                except VlineError:
                    pass
    return None


# A minimal container for tegraflash's RCM "blob.bin" (what the real one holds is NVIDIA's business; the
# virtual device only needs to find the MB2 image in it).
RCM_BLOB_MAGIC = b'VLINE-RCM-BLOB\n'


def pack_rcm_blob(entries):
    out = RCM_BLOB_MAGIC
    for name, data in entries:
        nb = name.encode()
        out += struct.pack('<I', len(nb)) + nb + struct.pack('<I', len(data)) + data
    return out


def unpack_rcm_blob(b):
    if not b.startswith(RCM_BLOB_MAGIC):
        raise VlineError('blob.bin: not an RCM blob')
    p = len(RCM_BLOB_MAGIC)
    out = {}
    while p < len(b):
        (ln,) = struct.unpack('<I', b[p:p + 4])
        name = b[p + 4:p + 4 + ln].decode()
        p += 4 + ln
        (ld,) = struct.unpack('<I', b[p:p + 4])
        out[name] = b[p + 4:p + 4 + ld]
        p += 4 + ld
    return out


def placeholder(name):
    """Content of a board file the virtual BSP only needs to exist."""
    return ('virtual-line placeholder for %s\n' % name).encode()


def fskp_base_image():
    """The virtual fskp_t234.bin: filler bytes (odmfuse appends the fuse blob to it)."""
    head = b'VLINE-FSKP-MB2\n'
    return head + b'\xa5' * (8192 - len(head))


# ---------------------------------------------------------------- configuration and state files

def tool_dir():
    return os.path.dirname(os.path.abspath(sys.argv[0]))


def load_conf(d=None):
    d = d or tool_dir()
    p = os.path.join(d, 'vline.conf')
    try:
        with open(p) as f:
            c = json.load(f)
    except (OSError, ValueError) as e:
        raise VlineError('%s: %s (the virtual BSP needs its vline.conf)' % (p, e))
    hw = c.get('hw')
    if not isinstance(hw, str) or not os.path.isabs(hw) or not os.path.isdir(hw):
        raise VlineError('%s: hw directory %r missing' % (p, hw))
    step = c.get('step_seconds', 0)
    if not isinstance(step, (int, float)) or step < 0:
        raise VlineError('%s: step_seconds %r invalid' % (p, step))
    return {'hw': hw, 'step_seconds': float(step)}


def state_path(hw, instance):
    return os.path.join(hw, instance + '.json')


def save_state(hw, st):
    p = state_path(hw, st['instance'])
    tmp = p + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(st, f, indent=1, sort_keys=True)
        f.write('\n')
    os.replace(tmp, p)


class locked:
    """with locked(hw, instance) as st: the state dict (None when there is no such device), under an exclusive
    flock; saved when the block ends normally (a return inside it included), not when it raises."""

    def __init__(self, hw, instance):
        self.hw, self.instance, self.fd, self.st = hw, instance, None, None

    def __enter__(self):
        if not INSTANCE_RE.match(self.instance or '') or not os.path.exists(state_path(self.hw, self.instance)):
            return None
        self.fd = os.open(os.path.join(self.hw, self.instance + '.lock'), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX)
            with open(state_path(self.hw, self.instance)) as f:
                self.st = json.load(f)
        except BaseException:
            os.close(self.fd)
            self.fd = None
            raise
        return self.st

    def __exit__(self, etype, e, tb):
        if self.fd is None:
            return False
        try:
            if etype is None:
                save_state(self.hw, self.st)
        finally:
            os.close(self.fd)
            self.fd = None
        return False


def instances(hw):
    return sorted(f[:-5] for f in os.listdir(hw) if f.endswith('.json'))


def present(st):
    return st is not None and 'vanish' not in st['faults']


def default_ecid(instance, chip, salt=''):
    """Deterministic from INSTANCE; fuse-level nibbles zero; E[4:6] is the chip id."""
    import hashlib
    h = hashlib.sha256(('vline:' + instance + salt).encode()).hexdigest()
    if chip == 't234':
        head = '0001' + CHIP_HEX[chip]      # E[0] mode, E[1] auth+SBK, E[2] 0, E[3] chip revision
    else:
        head = '0801' + CHIP_HEX[chip]      # E[0] mode+auth, E[1:3] "80", E[3] revision
    return head + h[:26]


def check_ecid(ecid, chip):
    e = ecid.lower()
    if e.startswith('0x'):
        e = e[2:]
    if not re.fullmatch(r'[0-9a-f]{32}', e):
        raise VlineError('--ecid %s: need 32 hex digits' % ecid)
    if e[4:6] != CHIP_HEX[chip]:
        raise VlineError('--ecid %s: E[4:6] must be the chip id %s' % (ecid, CHIP_HEX[chip]))
    if chip == 't234' and e[0:2] != '00':
        raise VlineError('--ecid %s: the fuse-level nibbles E[0], E[1] must be 0 (they follow the fuses)' % ecid)
    if chip == 't194' and (e[0] != '0' or e[1:3] != '80'):
        raise VlineError('--ecid %s: T194 needs E[0] = 0 (it follows the fuses) and E[1:3] = 80' % ecid)
    return e


def new_state(instance, module, ecid=None, bsi_reserved=False, fuses=None):
    pid, chip = MODULES[module]
    st = {
        'instance': instance, 'module': module, 'chip': chip, 'pid': '%04x' % pid,
        'ecid': check_ecid(ecid, chip) if ecid else default_ecid(instance, chip),
        'fuses': dict((n, '0' * (2 * s)) for n, s in SIZES[chip].items()),
        'stage': 'bootrom', 'uid_pending': True, 'faults': [], 'bsi_reserved': bool(bsi_reserved),
        'burns': 0, 'burns_effective': 0, 'reads': 0, 'swaps': 0, 'uart': [], 'session_reads': 0,
    }
    if bsi_reserved:
        st['fuses']['BootSecurityInfo'] = '%08x' % 0x1e0
    for name, hexval in (fuses or {}).items():
        if name not in SIZES[chip]:
            raise VlineError('--fuse %s: no such fuse on %s' % (name, chip.upper()))
        size = SIZES[chip][name]
        v = _hexstr(hexval, '--fuse ' + name)
        if int(v, 16) >> (8 * size):
            raise VlineError('--fuse %s=%s: does not fit in %d bytes' % (name, hexval, size))
        st['fuses'][name] = '%0*x' % (2 * size, int(v, 16))
    return st


def fuse_int(st, name):
    return int(st['fuses'][name], 16)


def br_cid(st):
    """The BR_CID as the BootROM prints it: ECID with the fuse-level nibbles following the fuses (§8)."""
    e = list(st['ecid'])
    sm = fuse_int(st, 'SecurityMode') != 0
    bsi = fuse_int(st, 'BootSecurityInfo')
    if st['chip'] == 't234':
        e[0] = '8' if sm else '0'
        e[1] = '%x' % (bsi & 0xf)
    else:
        e[0] = '%x' % ((8 if sm else 0) | (bsi & 7))
    return ''.join(e)


def show(st):
    out = dict((k, st[k]) for k in ('instance', 'module', 'chip', 'pid', 'ecid', 'fuses', 'uid_pending',
                                     'burns', 'burns_effective', 'reads', 'swaps', 'uart', 'faults',
                                     'stage', 'bsi_reserved'))
    out['br_cid'] = br_cid(st)
    out['applet_running'] = st['stage'] == 'applet'
    out['present'] = present(st)
    return out


# ---------------------------------------------------------------- what the device does

def uart(st, line):
    st['uart'].append(line)
    del st['uart'][:-2000]


def enter_recovery(st):
    """A fresh recovery-mode entry: BootROM waiting, the UID greeting pending, no applet."""
    st['stage'] = 'bootrom'
    st['uid_pending'] = True
    st['session_reads'] = 0


def _burn_nodes(st, nodes, test, fskp, dummy=False):
    """Burn (type, size, raw) nodes with one-time-programmable semantics; returns True if a bit changed."""
    chip = st['chip']
    tag = 'FSKP' if fskp else 'MB2'
    st['burns'] += 1
    by_type = dict((t, n) for n, t in TYPES[chip].items())
    named = []
    for i, (t, size, raw) in enumerate(nodes):
        name = by_type.get(t)
        if name is None:
            uart(st, 'E> %s: unknown fuse type 0x%x' % (tag, t))
            uart(st, 'E> %s: Failed to burn fuses.' % tag)
            enter_recovery(st)
            return False
        named.append((i, name, size, raw))
    if fuse_int(st, 'SecurityMode') != 0:
        uart(st, 'E> %s: production mode is set: fuse burning refused' % tag)
        uart(st, 'E> %s: Failed to burn fuses.' % tag)
        enter_recovery(st)
        return False
    if not fskp:
        # T186/T194 MB2 burns SecurityMode last, wherever it sits (§2 burn order rules) [I for T194].
        named = [x for x in named if x[1] != 'SecurityMode'] + [x for x in named if x[1] == 'SecurityMode']
    nostick = 'nostick' in st['faults']
    changed = False
    for i, name, size, raw in named:
        uart(st, 'Index : %d  %s size: %d' % (i, name, size))
        if size != SIZES[chip][name]:
            uart(st, 'E> %s: %s size mismatch (%d, the fuse has %d bytes)' % (tag, name, size, SIZES[chip][name]))
            uart(st, 'E> %s: Failed to burn fuses.' % tag)
            break
        if test or dummy:
            uart(st, 'Dry run detected, returning now.' if test else 'Dummy burn: %s not burned' % name)
            continue
        uart(st, '%d. Start %s burn' % (i, name))
        old = fuse_int(st, name)
        new = int(decode_value(size, raw), 16)
        if old == new:
            uart(st, 'Fuse is already burned with the same value')
            continue
        lost = old & ~new
        if lost:
            bit = (lost & -lost).bit_length() - 1
            uart(st, 'E> Tried to set fuse bit %d of %s from 1 to 0' % (bit, name))
            uart(st, 'E> %s: Failed to burn fuse %s' % (tag, name))
            uart(st, 'E> %s: Failed to burn fuses.' % tag)
            break
        if not nostick:
            st['fuses'][name] = '%0*x' % (2 * size, new | old)
            changed = True
    if changed:
        st['burns_effective'] += 1
        if 'vanish-after-burn' in st['faults']:
            # The board is pulled right after a burn that changed fuses: its read-back finds nothing.
            st['faults'] = [f for f in st['faults'] if f != 'vanish-after-burn'] + ['vanish']
    enter_recovery(st)
    return changed


def fskp_burn(st, blob):
    magic, nodes = parse_blob(blob)
    uart(st, 'I> FSKP: fuse blob with %d fuses, magic 0x%08x' % (len(nodes), magic))
    return _burn_nodes(st, nodes, magic == MAGIC_TEST, True)


def mb2_burn(st, blob, dummy):
    magic, nodes = parse_blob(blob)
    uart(st, 'I> MB2: burnfuses%s, %d fuses' % (' dummy' if dummy else '', len(nodes)))
    return _burn_nodes(st, nodes, magic == MAGIC_TEST, False, dummy)


def read_fuse(st, t, size):
    chip = st['chip']
    by_type = dict((ty, n) for n, ty in TYPES[chip].items())
    name = by_type.get(t)
    if name is None:
        raise VlineError('readfuses: unknown fuse type 0x%x' % t, 3)
    if size != SIZES[chip][name]:
        raise VlineError('readfuses: %s size mismatch (%d, the fuse has %d bytes)' % (name, size, SIZES[chip][name]), 3)
    return encode_value(name, size, st['fuses'][name])


def swap_board(st):
    """Another board with a different ECID and blank fuses now sits on this port."""
    st['swaps'] += 1
    st['ecid'] = default_ecid(st['instance'], st['chip'], ':swap%d' % st['swaps'])
    st['fuses'] = dict((n, '0' * (2 * s)) for n, s in SIZES[st['chip']].items())
    if st.get('bsi_reserved'):
        st['fuses']['BootSecurityInfo'] = '%08x' % 0x1e0
    enter_recovery(st)


def readfuses_completed(hw, instance):
    """Called by tegraflash when a readfuses finished: counts it and fires the *-after-read faults."""
    with locked(hw, instance) as st:
        if st is None:
            return
        st['reads'] += 1
        if 'vanish-after-read' in st['faults']:
            st['faults'] = [f for f in st['faults'] if f != 'vanish-after-read'] + ['vanish']
        if 'swap-after-read' in st['faults']:
            st['faults'] = [f for f in st['faults'] if f != 'swap-after-read']
            swap_board(st)


def has_fault(hw, instance, kind):
    with locked(hw, instance) as st:
        return st is not None and kind in st['faults']


def hang_forever():
    """A real hang: the caller must time out and kill the process group."""
    sys.stdout.flush()
    while True:
        time.sleep(3600)


def unlink_write(path, data):
    """Write a new file (never through a hard link into the package's own copy)."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    with open(path, 'wb') as f:
        f.write(data)
