#!/usr/bin/env python3
"""mkusb.py — write a umockdev device description of USB devices, for the
virtual line (tests/virtual-line/CONTRACT.md).

    mkusb.py [--no-parents] OUT.umockdev SPEC...
    SPEC = INSTANCE:VID:PID[:DEVNUM]      e.g. 1-2.3:0955:7523

INSTANCE is the tegraflash instance `<bus>-<port.port...>` (decimal; bus and
ports 1..255, at most 7 ports deep), VID and PID are 4 hex digits, DEVNUM (the
USB device address, 1..127) is optional. Every device gets the records
umockdev-record would write for a real one (P:/N:/E:/A:/H: lines): the
usb_device udev properties, the sysfs attributes libusb reads (busnum, devnum,
devpath, speed, the binary `descriptors`, ...) and a device node whose contents
are the descriptors. The parents a real bus has are generated too: the PCI
host controller, one root hub `usb<bus>` per bus, and an external hub at every
port-path prefix (1-2 and 1-2.3 for 1-2.3.4), because libusb derives a
device's port numbers from the sysfs names of that chain.

Device addresses: root hubs are 1; the rest are numbered 2, 3, ... per bus in
port-path order, skipping the addresses given explicitly.

--no-parents writes only the SPEC devices (every SPEC then needs a DEVNUM):
the description of a device plugged in later, under hubs already in the
testbed (the hot-plug test adds it with umockdev_testbed_add_from_string and
sends an "add" uevent).

Recovery-mode NVIDIA devices (vendor 0955) describe themselves like the
BootROM's APX device: one vendor-specific interface with a bulk IN and a bulk
OUT endpoint (what tegrarcm looks for).

Exit status: 0 written; 2 bad arguments (one line on stderr naming the SPEC).
Nothing is written on error (the file is replaced atomically)."""
import argparse
import os
import re
import sys
import tempfile

PCI = "/devices/pci0000:00/0000:00:14.0"
INSTANCE_RE = re.compile(r"^([1-9][0-9]{0,2})-([1-9][0-9]{0,2}(?:\.[1-9][0-9]{0,2}){0,6})$")
MAX_DEPTH = 7


class SpecError(Exception):
    pass


def parse_instance(s):
    m = INSTANCE_RE.match(s)
    if not m:
        raise SpecError(f"instance '{s}': expected <bus>-<port>[.<port>...] (decimal, no leading zeros)")
    bus = int(m.group(1))
    ports = tuple(int(p) for p in m.group(2).split("."))
    if bus > 255 or any(p > 255 for p in ports):
        raise SpecError(f"instance '{s}': bus and port numbers go up to 255")
    return bus, ports


def parse_spec(spec):
    parts = spec.split(":")
    if len(parts) not in (3, 4):
        raise SpecError(f"SPEC '{spec}': expected INSTANCE:VID:PID[:DEVNUM]")
    bus, ports = parse_instance(parts[0])
    ids = []
    for what, v in (("VID", parts[1]), ("PID", parts[2])):
        if not re.fullmatch(r"[0-9a-fA-F]{4}", v):
            raise SpecError(f"SPEC '{spec}': {what} '{v}' is not 4 hex digits")
        ids.append(int(v, 16))
    devnum = None
    if len(parts) == 4:
        if not re.fullmatch(r"[1-9][0-9]{0,2}", parts[3]) or int(parts[3]) > 127:
            raise SpecError(f"SPEC '{spec}': DEVNUM '{parts[3]}' is not 1..127")
        devnum = int(parts[3])
    return {"bus": bus, "ports": ports, "vid": ids[0], "pid": ids[1], "devnum": devnum, "kind": "device"}


def le16(v):
    return bytes((v & 0xFF, v >> 8))


def descriptors(node):
    """Device descriptor + configuration (config, interface, endpoints), the
    bytes sysfs shows in `descriptors` (the cached device descriptor followed
    by the raw configuration descriptors)."""
    if node["kind"] in ("hub", "root"):
        dev_class, dev_proto = 0x09, (0x00 if node["kind"] == "root" else 0x01)
        iface = bytes([9, 4, 0, 0, 1, 0x09, 0x00, 0x00, 0])
        eps = [bytes([7, 5, 0x81, 0x03]) + le16(4) + bytes([0x0C])]
        attrs, power = 0xE0, 0
    else:
        dev_class, dev_proto = 0x00, 0x00
        iface = bytes([9, 4, 0, 0, 2, 0xFF, 0xFF, 0xFF, 0])
        eps = [bytes([7, 5, 0x81, 0x02]) + le16(512) + bytes([0]),
               bytes([7, 5, 0x01, 0x02]) + le16(512) + bytes([0])]
        attrs, power = 0xC0, 0x32
    total = 9 + len(iface) + sum(len(e) for e in eps)
    dev = bytes([18, 1]) + le16(0x0200) + bytes([dev_class, 0, dev_proto, 64]) + \
        le16(node["vid"]) + le16(node["pid"]) + le16(node["bcd"]) + bytes([1, 2, 0, 1])
    cfg = bytes([9, 2]) + le16(total) + bytes([1, 1, 0, attrs, power])
    return dev + cfg + iface + b"".join(eps)


def sysname(node):
    if node["kind"] == "root":
        return f"usb{node['bus']}"
    return f"{node['bus']}-" + ".".join(str(p) for p in node["ports"])


def syspath(node):
    """/devices/... : the root hub under the controller, each device under
    its parent hub, as the kernel lays them out."""
    path = f"{PCI}/usb{node['bus']}"
    for i in range(1, len(node["ports"]) + 1):
        path += f"/{node['bus']}-" + ".".join(str(p) for p in node["ports"][:i])
    return path


def escape_attr(v):
    return v.replace("\\", "\\\\").replace("\n", "\\n")


def strings(node):
    if node["kind"] == "root":
        return "Linux xhci-hcd", "xHCI Host Controller"
    if node["kind"] == "hub":
        return "Generic", "USB2.0 Hub"
    if node["vid"] == 0x0955:
        return "NVIDIA Corp.", "APX"
    return "Generic", "USB Device"


def record(node, maxchild):
    bus, devnum = node["bus"], node["devnum"]
    desc = descriptors(node)
    hexdesc = desc.hex().upper()
    devname = f"bus/usb/{bus:03d}/{devnum:03d}"
    minor = (bus - 1) * 128 + (devnum - 1)
    dev_class, dev_proto = desc[4], desc[6]
    iface_class = 0x09 if node["kind"] in ("hub", "root") else 0xFF
    manufacturer, product = strings(node)
    lines = [f"P: {syspath(node)}", f"N: {devname}={hexdesc}"]
    props = {
        "BUSNUM": f"{bus:03d}",
        "DEVNAME": f"/dev/{devname}",
        "DEVNUM": f"{devnum:03d}",
        "DEVTYPE": "usb_device",
        "DRIVER": "usb",
        "ID_BUS": "usb",
        "ID_MODEL_ID": f"{node['pid']:04x}",
        "ID_REVISION": f"{node['bcd']:04x}",
        "ID_USB_INTERFACES": f":{iface_class:02x}{'ff' if iface_class == 0xFF else '00'}"
                             f"{'ff' if iface_class == 0xFF else '00'}:",
        "ID_VENDOR_ID": f"{node['vid']:04x}",
        "MAJOR": "189",
        "MINOR": str(minor),
        "PRODUCT": f"{node['vid']:x}/{node['pid']:x}/{node['bcd']:x}",
        "SUBSYSTEM": "usb",
        "TYPE": f"{dev_class}/0/{dev_proto}",
    }
    lines += [f"E: {k}={v}" for k, v in sorted(props.items())]
    attrs = {
        "authorized": "1",
        "avoid_reset_quirk": "0",
        "bConfigurationValue": "1",
        "bDeviceClass": f"{dev_class:02x}",
        "bDeviceProtocol": f"{dev_proto:02x}",
        "bDeviceSubClass": "00",
        "bMaxPacketSize0": "64",
        "bMaxPower": "0mA" if node["kind"] in ("hub", "root") else "100mA",
        "bNumConfigurations": "1",
        "bNumInterfaces": " 1",
        "bcdDevice": f"{node['bcd']:04x}",
        "bmAttributes": f"{desc[18 + 7]:02x}",
        "busnum": f"{bus}\n",
        "configuration": "",
        "dev": f"189:{minor}",
        "devnum": f"{devnum}\n",
        "devpath": "0" if node["kind"] == "root" else ".".join(str(p) for p in node["ports"]),
        "idProduct": f"{node['pid']:04x}",
        "idVendor": f"{node['vid']:04x}",
        "ltm_capable": "no",
        "manufacturer": manufacturer,
        "maxchild": str(maxchild),
        "product": product,
        "quirks": "0x0",
        "removable": "fixed" if node["kind"] == "root" else "removable",
        "speed": "480",
        "urbnum": "1",
        "version": " 2.00",
    }
    if node["kind"] == "root":
        attrs["authorized_default"] = "1"
        attrs["serial"] = "0000:00:14.0"
    for k in sorted(attrs):
        lines.append(f"A: {k}={escape_attr(attrs[k])}")
    lines.append(f"H: descriptors={hexdesc}")
    return "\n".join(lines) + "\n"


def pci_record():
    return (f"P: {PCI}\n"
            "E: DRIVER=xhci_hcd\n"
            "E: PCI_CLASS=C0330\n"
            "E: PCI_ID=8086:A36D\n"
            "E: PCI_SLOT_NAME=0000:00:14.0\n"
            "E: SUBSYSTEM=pci\n"
            "A: class=0x0c0330\n"
            "A: device=0xa36d\n"
            "A: vendor=0x8086\n")


def build(specs, no_parents):
    nodes = {}
    for s in specs:
        key = (s["bus"], s["ports"])
        if key in nodes:
            raise SpecError(f"instance {sysname(s)} given twice")
        nodes[key] = s
    leaves = set(nodes)
    for (bus, ports) in leaves:
        for other_bus, other_ports in leaves:
            if other_bus == bus and len(other_ports) > len(ports) and other_ports[:len(ports)] == ports:
                raise SpecError(f"instance {sysname(nodes[(bus, ports)])} is a device, not a hub, "
                                f"but {sysname(nodes[(other_bus, other_ports)])} is behind it")
    if no_parents:
        for s in specs:
            if s["devnum"] is None:
                raise SpecError(f"--no-parents: instance {sysname(s)} needs an explicit DEVNUM")
    else:
        for (bus, ports) in list(leaves):
            for i in range(1, len(ports)):
                key = (bus, ports[:i])
                if key not in nodes:
                    nodes[key] = {"bus": bus, "ports": ports[:i], "vid": 0x05E3, "pid": 0x0608,
                                  "devnum": None, "kind": "hub"}
            if (bus, ()) not in nodes:
                nodes[(bus, ())] = {"bus": bus, "ports": (), "vid": 0x1D6B, "pid": 0x0002,
                                    "devnum": 1, "kind": "root"}
    for n in nodes.values():
        n["bcd"] = {"root": 0x0601, "hub": 0x6060}.get(n["kind"], 0x0001)

    # Addresses: explicit ones first, then 2, 3, ... per bus in port-path order.
    used = {}
    for n in nodes.values():
        if n["devnum"] is not None:
            taken = used.setdefault(n["bus"], set())
            if n["devnum"] in taken:
                raise SpecError(f"instance {sysname(n)}: device address {n['devnum']} used twice on bus {n['bus']}")
            taken.add(n["devnum"])
    for key in sorted(nodes):
        n = nodes[key]
        if n["devnum"] is None:
            taken = used.setdefault(n["bus"], set())
            d = 2
            while d in taken:
                d += 1
            if d > 127:
                raise SpecError(f"bus {n['bus']}: more than 127 devices")
            n["devnum"] = d
            taken.add(d)

    out = []
    # Parents before children (umockdev creates the directories as it goes).
    for key in sorted(nodes, key=lambda k: (k[0], len(k[1]), k[1])):
        n = nodes[key]
        children = [k[1][-1] for k in nodes if k[0] == n["bus"] and len(k[1]) == len(n["ports"]) + 1
                    and k[1][:len(n["ports"])] == n["ports"]]
        maxchild = 0 if n["kind"] == "device" else max([4] + children)
        out.append(record(n, maxchild))
    if not no_parents:
        out.append(pci_record())
    return "\n".join(out)


def main(argv):
    ap = argparse.ArgumentParser(prog="mkusb.py", description="Write a umockdev description of USB devices.")
    ap.add_argument("--no-parents", action="store_true",
                    help="write only the SPEC devices (each needs a DEVNUM): a device plugged in later")
    ap.add_argument("out", metavar="OUT.umockdev")
    ap.add_argument("specs", metavar="INSTANCE:VID:PID[:DEVNUM]", nargs="+")
    a = ap.parse_args(argv[1:])
    out = a.out
    try:
        text = build([parse_spec(s) for s in a.specs], a.no_parents)
    except SpecError as e:
        print(f"mkusb.py: {e}", file=sys.stderr)
        return 2
    d = os.path.dirname(os.path.abspath(out))
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".mkusb.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, out)
    except BaseException:
        os.unlink(tmp)
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
