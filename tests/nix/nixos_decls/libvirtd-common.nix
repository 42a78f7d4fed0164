# nixos/modules/virtualisation/libvirtd.nix, the part that is the same in both shapes below:
# enable (bool, false), package, allowedBridges (listOf str, [ "virbr0" ]); qemu's package
# (mkPackageOption "qemu"), runAsRoot (bool, true), swtpm.enable (bool, false). Its config
# part used here: the libvirtd group and `security.polkit.enable = true` with the assertion
# on it. nixos/modules/security/polkit.nix: security.polkit.enable (bool, false).
{ ovmf }: # the qemu.ovmf declaration of a release, or null for none
{ lib, config, pkgs, ... }:
let
  inherit (lib) mkOption types;
  cfg = config.virtualisation.libvirtd;
  swtpmModule = types.submodule {
    options.enable = mkOption {
      type = types.bool;
      default = false;
    };
    options.package = mkOption {
      type = types.package;
      default = pkgs.swtpm;
    };
  };
  qemuModule = types.submodule {
    options = {
      package = mkOption {
        type = types.package;
        default = pkgs.qemu;
      };
      runAsRoot = mkOption {
        type = types.bool;
        default = true;
      };
      verbatimConfig = mkOption {
        type = types.lines;
        default = "namespaces = []\n";
      };
      swtpm = mkOption {
        type = swtpmModule;
        default = { };
      };
    }
    // lib.optionalAttrs (ovmf != null) { inherit ovmf; };
  };
in
{
  options.security.polkit.enable = mkOption {
    type = types.bool;
    default = false;
  };
  options.virtualisation.libvirtd = {
    enable = mkOption {
      type = types.bool;
      default = false;
    };
    package = mkOption {
      type = types.package;
      default = pkgs.libvirt;
    };
    allowedBridges = mkOption {
      type = types.listOf types.str;
      default = [ "virbr0" ];
    };
    qemu = mkOption {
      type = qemuModule;
      default = { };
    };
  };
  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = config.security.polkit.enable;
        message = "The libvirtd module currently requires Polkit to be enabled ('security.polkit.enable = true').";
      }
    ];
    users.groups.libvirtd.gid = 67;
    security.polkit.enable = true;
  };
}
