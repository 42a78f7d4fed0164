# replaceBoot and forceDHCP off: the host's disks and network stay as they are.
{ lib, ... }:
{
  stagingvm.guest.replaceBoot = false;
  stagingvm.guest.forceDHCP = false;
  fileSystems."/" = {
    device = "/dev/vda1";
    fsType = "ext4";
  };
  networking.defaultGateway = "10.0.2.2";
}
