# The options nix/guest.nix sets, as nixpkgs declares them:
# - nixos/modules/system/boot/kernel.nix: boot.kernelParams (listOf str, [ ]),
#   boot.initrd.availableKernelModules / boot.initrd.kernelModules (listOf str, [ ]);
# - nixos/modules/system/boot/loader/loader.nix: boot.loader.timeout (nullOr int, 5);
# - nixos/modules/system/boot/loader/grub/grub.nix: boot.loader.grub.enable (bool, true
#   on non-container systems; declared as true here), devices (listOf str, [ ]),
#   efiSupport (bool, false);
# - nixos/modules/system/boot/loader/systemd-boot/systemd-boot.nix: enable (bool, false);
# - nixos/modules/system/boot/loader/efi.nix: boot.loader.efi.canTouchEfiVariables (bool, false);
# - nixos/modules/system/boot/loader/generic-extlinux-compatible/default.nix: enable (bool, false);
# - nixos/modules/system/boot/luksroot.nix: boot.initrd.luks.devices (attrsOf submodule, { });
# - nixos/modules/system/boot/grow-partition.nix: boot.growPartition (bool, false);
# - nixos/modules/tasks/filesystems.nix: fileSystems (attrsOf submodule: device nullOr str,
#   fsType str "auto", autoResize bool false, options listOf str), swapDevices (listOf
#   submodule, [ ]);
# - nixos/modules/services/networking/ssh/sshd.nix: services.openssh.enable (bool, false),
#   openFirewall (bool, true), authorizedKeysFiles (listOf str, [ ]), settings (submodule
#   with freeformType; PermitRootLogin nullOr enum [ yes without-password prohibit-password
#   forced-commands-only no ], default "prohibit-password");
# - nixos/modules/virtualisation/qemu-guest-agent.nix: services.qemuGuest.enable (bool, false);
# - nixos/modules/tasks/network-interfaces.nix: networking.useDHCP (bool, true),
#   networking.interfaces (attrsOf submodule, { }), networking.defaultGateway (nullOr
#   (coercedTo str … submodule), null);
# - nixos/modules/services/networking/wpa_supplicant.nix: networking.wireless.enable (bool, false).
{ lib, ... }:
let
  inherit (lib) mkOption types;
  bool = default: mkOption {
    type = types.bool;
    inherit default;
  };
  strs = mkOption {
    type = types.listOf types.str;
    default = [ ];
  };
  fsOpts = {
    options = {
      device = mkOption {
        default = null;
        type = types.nullOr types.nonEmptyStr;
      };
      fsType = mkOption {
        default = "auto";
        type = types.nonEmptyStr;
      };
      autoResize = bool false;
      options = strs;
    };
  };
in
{
  options = {
    boot.kernelParams = strs;
    boot.initrd.availableKernelModules = strs;
    boot.initrd.kernelModules = strs;
    boot.initrd.luks.devices = mkOption {
      default = { };
      type = types.attrsOf (types.submodule {
        options.device = mkOption { type = types.str; };
      });
    };
    boot.growPartition = bool false;
    boot.loader.timeout = mkOption {
      default = 5;
      type = types.nullOr types.int;
    };
    boot.loader.grub.enable = bool true;
    boot.loader.grub.devices = strs;
    boot.loader.grub.efiSupport = bool false;
    boot.loader.systemd-boot.enable = bool false;
    boot.loader.efi.canTouchEfiVariables = bool false;
    boot.loader.generic-extlinux-compatible.enable = bool false;

    fileSystems = mkOption {
      default = { };
      type = types.attrsOf (types.submodule fsOpts);
    };
    swapDevices = mkOption {
      default = [ ];
      type = types.listOf (types.submodule {
        options.device = mkOption { type = types.str; };
      });
    };

    services.openssh = {
      enable = bool false;
      openFirewall = bool true;
      authorizedKeysFiles = strs;
      settings = mkOption {
        default = { };
        type = types.submodule {
          freeformType = with types; attrsOf (nullOr (oneOf [ bool int str (listOf str) ]));
          options.PermitRootLogin = mkOption {
            default = "prohibit-password";
            type = types.nullOr (types.enum [
              "yes"
              "without-password"
              "prohibit-password"
              "forced-commands-only"
              "no"
            ]);
          };
        };
      };
    };
    services.qemuGuest.enable = bool false;

    networking.useDHCP = bool true;
    networking.interfaces = mkOption {
      default = { };
      type = types.attrsOf (types.submodule {
        options.useDHCP = mkOption {
          type = types.nullOr types.bool;
          default = null;
        };
      });
    };
    networking.defaultGateway = mkOption {
      default = null;
      type = types.nullOr (types.coercedTo types.str (address: { inherit address; }) (types.submodule {
        options.address = mkOption { type = types.str; };
      }));
    };
    networking.wireless.enable = bool false;
  };
}
