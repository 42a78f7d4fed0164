"""libvirt adapters and resources: connection, network, storage, domains, addresses, console.

The only package that imports libvirt. May import the top-level leaves (``errors``, ``names``,
``progress``, ``settings``, ``terminal``, ``locks``) and ``config``; ``virt.accel`` sits one
layer above the rest of ``virt``.
"""
