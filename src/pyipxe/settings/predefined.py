"""iPXE's predefined settings (reference §2.4): names, types, DHCP tags, scopes.

Why a table: a name like ``filename`` or a number like ``67`` must resolve to the same
setting with the same type everywhere (expansion, ``set``, ``show``, DHCP). Blocks with
their own namespace (builtin, SMBIOS, interfaces, IPv6) use a ``scope`` so that their
settings only apply to them and never collide on tag numbers.
"""

from __future__ import annotations

from pyipxe.settings import types as t
from pyipxe.settings.smbios import smbios_tag
from pyipxe.settings.store import Setting, predefine

SCOPE_BUILTIN = "builtin"
SCOPE_SMBIOS = "smbios"
SCOPE_NETDEV = "netdev"
SCOPE_IPV6 = "ipv6"
SCOPE_CPUID = "cpuid"
SCOPE_MEMMAP = "memmap"


def encap(option: int, sub: int) -> int:
    """Tag of sub-option ``sub`` inside DHCP option ``option`` (``175.8`` style)."""
    return (option << 8) | sub


EB = 175  # iPXE's own encapsulated DHCP option

# DHCPv4 options (default scope).
IP = predefine(Setting("ip", t.IPV4, encap(EB, 2), description="IP address"))
NETMASK = predefine(Setting("netmask", t.IPV4, 1, description="Subnet mask"))
GATEWAY = predefine(Setting("gateway", t.IPV4, 3, description="Default gateway"))
STATIC_ROUTES = predefine(Setting("static-routes", t.HEX, 121, description="Static routes"))
DNS = predefine(Setting("dns", t.IPV4, 6, description="DNS server"))
DOMAIN = predefine(Setting("domain", t.STRING, 15, description="DNS domain"))
DNSSL = predefine(Setting("dnssl", t.DNSSL, 119, description="DNS search list"))
HOSTNAME = predefine(Setting("hostname", t.STRING, 12, description="Host name"))
FILENAME = predefine(Setting("filename", t.STRING, 67, description="Boot filename"))
NEXT_SERVER = predefine(Setting("next-server", t.IPV4, encap(EB, 3), description="TFTP server"))
ROOT_PATH = predefine(Setting("root-path", t.STRING, 17, description="SAN root path"))
SAN_FILENAME = predefine(Setting("san-filename", t.STRING, encap(EB, 188), description="SAN filename"))
INITIATOR_IQN = predefine(Setting("initiator-iqn", t.STRING, 203, description="iSCSI initiator name"))
KEEP_SAN = predefine(Setting("keep-san", t.INT8, encap(EB, 8), description="Preserve SAN connection"))
SKIP_SAN_BOOT = predefine(Setting("skip-san-boot", t.INT8, encap(EB, 9), description="Do not boot from SAN device"))
SAN_DRIVE = predefine(Setting("san-drive", t.UINT8, encap(EB, 189), description="SAN drive number"))
SAN_RETRIES = predefine(Setting("san-retries", t.INT8, encap(EB, 187), description="SAN retry count"))
USERNAME = predefine(Setting("username", t.STRING, encap(EB, 190), description="User name"))
PASSWORD = predefine(Setting("password", t.STRING, encap(EB, 191), description="Password"))
REVERSE_USERNAME = predefine(
    Setting("reverse-username", t.STRING, encap(EB, 192), description="Reverse user name")
)
REVERSE_PASSWORD = predefine(
    Setting("reverse-password", t.STRING, encap(EB, 193), description="Reverse password")
)
UID = predefine(Setting("uid", t.UINT32, encap(EB, 194), description="User ID"))
GID = predefine(Setting("gid", t.UINT32, encap(EB, 195), description="Group ID"))
USER_CLASS = predefine(Setting("user-class", t.STRING, 77, description="DHCP user class"))
VENDOR_CLASS = predefine(Setting("vendor-class", t.STRING, 60, description="DHCP vendor class"))
PRIORITY = predefine(Setting("priority", t.INT8, encap(EB, 1), description="Settings priority"))
SCRIPTLET = predefine(Setting("scriptlet", t.STRING, encap(EB, 81), description="Boot scriptlet"))
SYSLOG = predefine(Setting("syslog", t.IPV4, 7, description="Syslog server"))
SYSLOGS = predefine(Setting("syslogs", t.STRING, encap(EB, 85), description="Encrypted syslog server"))
NTP = predefine(Setting("ntp", t.IPV4, 42, description="NTP server"))
DHCP_SERVER = predefine(Setting("dhcp-server", t.IPV4, 54, description="DHCP server"))
MTU = predefine(Setting("mtu", t.INT16, 26, description="MTU"))
TRUST = predefine(Setting("trust", t.HEX, encap(EB, 90), description="Trusted root certificate fingerprints"))
CERT = predefine(Setting("cert", t.HEX, encap(EB, 91), description="Client certificate"))
PRIVKEY = predefine(Setting("privkey", t.HEX, encap(EB, 92), description="Client private key"))
CROSSCERT = predefine(Setting("crosscert", t.STRING, encap(EB, 93), description="Cross-signed certificate source"))
KEYMAP = predefine(Setting("keymap", t.STRING, encap(EB, 84), description="Keyboard layout"))
SSID = predefine(Setting("ssid", t.STRING, encap(EB, 0x76), description="Wireless SSID"))
KEY = predefine(Setting("key", t.STRING, encap(EB, 0x75), description="Wireless encryption key"))
ACTIVE_SCAN = predefine(Setting("active-scan", t.INT8, encap(EB, 0x74), description="Actively scan for wireless networks"))

# Interface settings (live values of the network device).
MAC = predefine(Setting("mac", t.HEX, 0, SCOPE_NETDEV, "MAC address"))
HWADDR = predefine(Setting("hwaddr", t.HEX, 0, SCOPE_NETDEV, "Hardware address"))
BUSTYPE = predefine(Setting("bustype", t.STRING, 0, SCOPE_NETDEV, "Bus type"))
BUSLOC = predefine(Setting("busloc", t.UINT32, 0, SCOPE_NETDEV, "Bus location"))
BUSID = predefine(Setting("busid", t.HEX, 0, SCOPE_NETDEV, "Bus ID"))
LINKTYPE = predefine(Setting("linktype", t.STRING, 0, SCOPE_NETDEV, "Link-layer type"))
CHIP = predefine(Setting("chip", t.STRING, 0, SCOPE_NETDEV, "Chip"))
IFNAME = predefine(Setting("ifname", t.STRING, 0, SCOPE_NETDEV, "Interface name"))

# IPv6.
IP6 = predefine(Setting("ip6", t.IPV6, 1, SCOPE_IPV6, "IPv6 address"))
LEN6 = predefine(Setting("len6", t.INT8, 2, SCOPE_IPV6, "IPv6 address prefix length"))
GATEWAY6 = predefine(Setting("gateway6", t.IPV6, 3, SCOPE_IPV6, "IPv6 gateway"))
DNS6 = predefine(Setting("dns6", t.IPV6, 23, SCOPE_IPV6, "DNSv6 server"))
SYSLOG6 = predefine(Setting("syslog6", t.IPV6, 0, SCOPE_IPV6, "IPv6 syslog server"))

# SMBIOS.
# SMBIOS: tags are <type>.<offset>.<length> (length 0 = string number at offset).
UUID = predefine(Setting("uuid", t.UUID, smbios_tag(1, 8, 16), SCOPE_SMBIOS, "UUID"))
MANUFACTURER = predefine(Setting("manufacturer", t.STRING, smbios_tag(1, 4, 0), SCOPE_SMBIOS, "Manufacturer"))
PRODUCT = predefine(Setting("product", t.STRING, smbios_tag(1, 5, 0), SCOPE_SMBIOS, "Product name"))
SERIAL = predefine(Setting("serial", t.STRING, smbios_tag(1, 7, 0), SCOPE_SMBIOS, "Serial number"))
ASSET = predefine(Setting("asset", t.STRING, smbios_tag(3, 8, 0), SCOPE_SMBIOS, "Asset tag"))
BOARD_SERIAL = predefine(Setting("board-serial", t.STRING, smbios_tag(2, 7, 0), SCOPE_SMBIOS, "Base board serial"))

# Computed by the firmware.
ERRNO = predefine(Setting("errno", t.UINT32, 0, SCOPE_BUILTIN, "Last error"))
BUILDARCH = predefine(Setting("buildarch", t.STRING, 0, SCOPE_BUILTIN, "Build architecture"))
PLATFORM = predefine(Setting("platform", t.STRING, 0, SCOPE_BUILTIN, "Platform"))
VERSION = predefine(Setting("version", t.STRING, 0, SCOPE_BUILTIN, "Version"))
UNIXTIME = predefine(Setting("unixtime", t.UINT32, 0, SCOPE_BUILTIN, "Seconds since the Epoch"))
CWURI = predefine(Setting("cwuri", t.STRING, 0, SCOPE_BUILTIN, "Current working URI"))
CWDURI = predefine(Setting("cwduri", t.STRING, 0, SCOPE_BUILTIN, "Current working directory URI"))
MEMSIZE = predefine(Setting("memsize", t.INT32, 0, SCOPE_MEMMAP, "Memory size (in MB)"))
CPUVENDOR = predefine(Setting("cpuvendor", t.STRING, 0, SCOPE_CPUID, "CPU vendor"))
CPUMODEL = predefine(Setting("cpumodel", t.STRING, 0, SCOPE_CPUID, "CPU model"))
