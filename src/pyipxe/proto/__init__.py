"""Network protocols as pure state machines (sans-IO), one module per protocol.

Why sans-IO: retransmission, loss and hostile packets are the hard part of a boot
loader's protocols, and a machine that only turns bytes and timer expiries into bytes,
timer requests and results can be tested exhaustively without sockets or sleeping.

Rules of this package:
- No sockets, no asyncio, no clocks: a thin driver in ``net/`` owns those and feeds
  the machines; nothing here imports from ``net/``, ``image/`` or ``script/``.
- Nothing received from the network raises; bad packets are dropped and counted.
- Failures are reported as :class:`~pyipxe.errors.IpxeError` carrying iPXE's numbers.
"""
