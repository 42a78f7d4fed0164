# NixOS 25.05 and older: nixos/modules/virtualisation/libvirtd.nix before nixpkgs PR #421549
# (merged 2025-10, first released in 25.11). qemu.ovmf is a submodule with enable (bool,
# true), packages (listOf package, [ pkgs.OVMF.fd ]) and the internal package (nullOr
# package, null) guarded by an assertion.
{ lib, config, pkgs, ... }:
let
  inherit (lib) mkOption types;
  ovmfModule = types.submodule {
    options = {
      enable = mkOption {
        type = types.bool;
        default = true;
      };
      package = mkOption {
        type = types.nullOr types.package;
        default = null;
        internal = true;
      };
      packages = mkOption {
        type = types.listOf types.package;
        default = [ pkgs.OVMF.fd ];
      };
    };
  };
in
{
  imports = [
    (import ./libvirtd-common.nix {
      ovmf = mkOption {
        type = ovmfModule;
        default = { };
      };
    })
  ];
  config = lib.mkIf config.virtualisation.libvirtd.enable {
    assertions = [
      {
        assertion = config.virtualisation.libvirtd.qemu.ovmf.package == null;
        message = "The option virtualisation.libvirtd.qemu.ovmf.package is superseded by virtualisation.libvirtd.qemu.ovmf.packages.";
      }
    ];
  };
}
