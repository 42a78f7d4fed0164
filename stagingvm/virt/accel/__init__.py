"""The accelerator probe: whether ``kvm`` really works on this host (``accel.py``), decided by
booting a tiny multiboot payload (``accelprobe/``) and caching the verdict.

May import the top-level leaves and the rest of ``virt``.
"""
