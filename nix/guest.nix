# stagingvm's guest module: added to a PR's NixOS configuration at build time (through
# extendModules for a flake host, an imports wrapper for a classic configuration.nix) so the
# system boots as a throwaway test VM under libvirt. The user's repository is never edited.
#
# What it changes, and why:
# - serial console on ttyS0: stagingvm logs it and shows its tail when a boot fails;
# - qemu-guest-agent and virtio-rng: clean shutdown, and no entropy starvation at boot;
# - SSH keys for root and the restricted users arrive at *start* time as systemd credentials
#   in SMBIOS OEM strings; nothing is baked into the store, so one image serves every run;
# - no boot-loader delay and fail-fast boot (panic=1, boot.panic_on_fail, short unit
#   time-outs): a broken boot ends quickly instead of hanging the CI job;
# - the host's disks, boot loader and static network setup are replaced by the VM's own
#   (one virtio disk with a root file system labelled "nixos", DHCP on the virtio NIC).
{ config, lib, ... }:
let
  cfg = config.stagingvm.guest;
  inherit (lib) mkOption types mkOverride;
  # Priority 10 (as mkVMOverride): beats the host's plain definitions and the image
  # modules' mkImageMediaOverride (60).
  vmOverride = mkOverride 10;
  keyDir = "/run/stagingvm/authorized_keys";
  credential = user: if user == "root" then "ssh.authorized_keys.root" else "stagingvm.authorized_keys.${user}";
  allUsers = [ "root" ] ++ cfg.users;
in
{
  options.stagingvm.guest = {
    enable = mkOption {
      type = types.bool;
      default = true;
      description = "Make this system a stagingvm test guest.";
    };
    users = mkOption {
      type = types.listOf types.str;
      default = [ "ai-worker" ];
      description = ''
        Users (besides root) whose SSH key is read at boot from the systemd credential
        `stagingvm.authorized_keys.USER` (an SMBIOS OEM string set by `pr-test-vm start`).
        The users themselves must be defined by the configuration under test.
      '';
    };
    replaceBoot = mkOption {
      type = types.bool;
      default = true;
      description = ''
        Replace the host's file systems, swap, LUKS devices and boot loader with the VM's:
        GRUB on /dev/vda and one ext4 root file system labelled "nixos".
      '';
    };
    forceDHCP = mkOption {
      type = types.bool;
      default = true;
      description = "Drop static interface settings and use DHCP on every interface.";
    };
  };

  config = lib.mkIf cfg.enable (
    lib.mkMerge [
      {
        boot.kernelParams = [
          "console=tty0"
          "console=ttyS0,115200n8" # the last console= is /dev/console
          "panic=1"
          "boot.panic_on_fail"
          "systemd.default_timeout_start_sec=90s"
          "systemd.default_timeout_stop_sec=30s"
        ];
        boot.loader.timeout = lib.mkForce 0;
        boot.initrd.availableKernelModules = [
          "virtio_pci"
          "virtio_blk"
          "virtio_scsi"
          "virtio_net"
        ];
        boot.initrd.kernelModules = [
          "virtio_rng"
          "virtio_console"
        ];
        services.qemuGuest.enable = true;

        # Keys come from credentials, into files of our own that sshd also reads; any keys
        # the configuration itself declares keep working.
        services.openssh.enable = true;
        services.openssh.openFirewall = true;
        services.openssh.authorizedKeysFiles = [ "${keyDir}/%u" ];
        services.openssh.settings.PermitRootLogin = vmOverride "prohibit-password";
        systemd.services.systemd-tmpfiles-setup.serviceConfig.LoadCredential = map credential allUsers;
        systemd.tmpfiles.rules = [
          "d /run/stagingvm 0755 root root -"
          "d ${keyDir} 0755 root root -"
        ] ++ map (user: "f^ ${keyDir}/${user} 0644 root root - ${credential user}") allUsers;
      }

      (lib.mkIf cfg.replaceBoot {
        fileSystems = vmOverride {
          "/" = {
            device = "/dev/disk/by-label/nixos";
            fsType = "ext4";
            autoResize = true;
          };
        };
        swapDevices = vmOverride [ ];
        boot.initrd.luks.devices = vmOverride { };
        boot.growPartition = true;
        boot.loader.grub.enable = vmOverride true;
        boot.loader.grub.devices = vmOverride [ "/dev/vda" ];
        boot.loader.grub.efiSupport = vmOverride false;
        boot.loader.systemd-boot.enable = vmOverride false;
        boot.loader.efi.canTouchEfiVariables = vmOverride false;
        boot.loader.generic-extlinux-compatible.enable = vmOverride false;
      })

      (lib.mkIf cfg.forceDHCP {
        networking.useDHCP = vmOverride true;
        networking.interfaces = vmOverride { };
        networking.defaultGateway = vmOverride null;
        networking.wireless.enable = vmOverride false;
      })
    ]
  );
}
