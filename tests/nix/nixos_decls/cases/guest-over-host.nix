# A host configuration as the guest module meets it: its own disks, boot loader, static
# network and sshd policy (some at mkForce, 50), and an image module's
# lib.mkImageMediaOverride (60, as nixos/modules/installer/cd-dvd/installation-cd-base.nix
# uses it). The guest's mkOverride 10 must win over all of them.
{ lib, ... }:
{
  imports = [
    {
      fileSystems = lib.mkImageMediaOverride {
        "/".device = "/dev/disk/by-label/IMAGE";
      };
      swapDevices = lib.mkImageMediaOverride [ ];
    }
  ];
  fileSystems."/" = {
    device = "/dev/nvme0n1p2";
    fsType = "btrfs";
  };
  fileSystems."/mnt/nas" = {
    device = "nas:/export";
    fsType = "nfs";
  };
  swapDevices = [ { device = "/dev/nvme0n1p3"; } ];
  boot.initrd.luks.devices.root.device = "/dev/nvme0n1p2";
  boot.loader.systemd-boot.enable = true;
  boot.loader.efi.canTouchEfiVariables = true;
  boot.loader.grub.enable = false;
  services.openssh.settings.PermitRootLogin = lib.mkForce "no";
  networking.useDHCP = false;
  networking.interfaces.enp3s0.useDHCP = false;
  networking.defaultGateway = "192.168.1.1";
  users.users.ai-worker = {
    isNormalUser = true;
    group = "users";
  };
}
