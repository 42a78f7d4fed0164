"""libvirt adapters and resources: connection, network, storage, domains, addresses, console."""
