# NixOS 25.11, 26.05 and master (26.11pre): nixos/modules/virtualisation/libvirtd.nix after
# nixpkgs PR #421549. QEMU's own OVMF images are always available; qemu.ovmf is kept as an
# internal stub (a submodule inside the qemu submodule, where mkRemovedOptionModule cannot
# reach) whose enable/package/packages are nullOr with default null, and an assertion fails
# when any of them is set. The old top-level names get mkRemovedOptionModule.
{ lib, config, ... }:
let
  inherit (lib) mkOption types;
  cfg = config.virtualisation.libvirtd;
in
{
  imports = [
    (import ./libvirtd-common.nix {
      ovmf = mkOption {
        type = types.submodule {
          options = {
            enable = mkOption {
              type = types.nullOr types.bool;
              default = null;
              internal = true;
            };
            package = mkOption {
              type = types.nullOr types.package;
              default = null;
              internal = true;
            };
            packages = mkOption {
              type = types.nullOr (types.listOf types.package);
              default = null;
              internal = true;
            };
          };
        };
        default = { };
        internal = true;
        description = "This submodule is deprecated and has been removed";
      };
    })
    (lib.mkRemovedOptionModule [ "virtualisation" "libvirtd" "qemuOvmf" ]
      "The 'virtualisation.libvirtd.qemuOvmf' option has been removed. All OVMF images distributed with QEMU are now available by default."
    )
    (lib.mkRemovedOptionModule [ "virtualisation" "libvirtd" "qemuOvmfPackage" ]
      "The 'virtualisation.libvirtd.qemuOvmfPackage' option has been removed. All OVMF images distributed with QEMU are now available by default."
    )
  ];
  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = (lib.filterAttrs (n: v: v != null) cfg.qemu.ovmf) == { };
        message = "The 'virtualisation.libvirtd.qemu.ovmf' submodule has been removed. All OVMF images distributed with QEMU are now available by default.";
      }
    ];
  };
}
