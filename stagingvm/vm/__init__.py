"""The VM lifecycle: the ``Manager`` (``manager.py``) and the steps it composes.

``host.py``/``setup.py`` prepare the libvirt host (network, pool, locks), ``start.py`` defines and
boots a VM, ``teardown.py`` destroys one, ``info.py`` reads one back, ``readiness.py`` and
``waits.py`` wait until the guest answers, ``undo.py`` rolls back half-made resources,
``hostkeys.py`` pins the guest's SSH host keys, ``models.py`` holds the records handed out.

May import the top-level leaves, ``config``, ``virt`` (and ``virt.accel``), ``ssh`` and ``images``;
never ``checks``, ``ci``, ``lab`` or ``cli``.
"""
