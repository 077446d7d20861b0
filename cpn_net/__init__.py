"""cpn_net: a compute-aware routing and network-slicing emulator.

Real Mininet networks of data-centre sites, an os-ken SDN controller that
programs Linux SRv6 and network slices, in-band telemetry, and a
compute-aware path selector.
"""

__version__ = "0.1.0"
