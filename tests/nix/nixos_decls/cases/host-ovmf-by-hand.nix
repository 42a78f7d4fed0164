# A configuration that still sets qemu.ovmf itself: the 25.11 stub's assertion catches it;
# on 25.05 it is a plain option.
{
  services.staging-vm.enable = true;
  virtualisation.libvirtd.qemu.ovmf.enable = true;
}
