# Builds a bootable disk image of a NixOS configuration with stagingvm's guest module added.
#
# stagingvm calls this file with `nix build --file build-image.nix --argstr stagingvmArgs JSON`.
# Every value (flake reference, host name, paths, guest options) arrives inside that one JSON
# string and is read with builtins.fromJSON, so nothing a user types is ever pasted into Nix
# source: a hostile host name is just an attribute name that does not exist.
#
# JSON fields:
#   kind          "flake" | "classic"
#   flakeRef      (flake) what builtins.getFlake takes: an absolute path or a flake URL
#   host          (flake) the attribute under nixosConfigurations
#   configuration (classic) absolute path of a configuration.nix
#   nixpkgs       (classic) absolute path of a nixpkgs tree, or null for <nixpkgs/nixos>
#   guestModule   absolute path of stagingvm's guest module (nix/guest.nix)
#   guest         attribute set assigned to the guest module's options (stagingvm.guest)
#   image         the name under system.build.images to build (normally "qemu")
{ stagingvmArgs }:
let
  args = builtins.fromJSON stagingvmArgs;

  guestModules = [
    (/. + args.guestModule)
    { stagingvm.guest = args.guest; }
  ];

  # A flake's host gets the guest module through extendModules, so the user's repository is
  # never edited; a classic configuration is wrapped in an imports list instead.
  evaluated =
    if args.kind == "flake" then
      let
        hosts = (builtins.getFlake args.flakeRef).nixosConfigurations or { };
      in
      if hosts ? ${args.host} then
        hosts.${args.host}.extendModules { modules = guestModules; }
      else
        throw "stagingvm: the flake has no nixosConfigurations.\"${args.host}\""
    else if args.kind == "classic" then
      import (if args.nixpkgs == null then <nixpkgs/nixos> else /. + args.nixpkgs + "/nixos") {
        configuration = {
          imports = [ (/. + args.configuration) ] ++ guestModules;
        };
      }
    else
      throw "stagingvm: unknown build kind \"${args.kind}\"";

  config = evaluated.config;
  built = config.system.build;

  # NixOS 25.05 and later: system.build.images.qemu is a bootable qcow2 (BIOS, GRUB on /dev/vda,
  # root file system labelled "nixos"). Older nixpkgs: make-disk-image.nix with the same layout.
  # Both list the image in $out/nix-support/hydra-build-products.
  hasImage = built ? images && built.images ? ${args.image};

  fallback =
    let
      pkgs = evaluated.pkgs or config._module.args.pkgs;
    in
    import "${pkgs.path}/nixos/lib/make-disk-image.nix" {
      inherit config pkgs;
      inherit (pkgs) lib;
      name = "stagingvm-disk-image";
      format = "qcow2";
      partitionTableType = "legacy";
      diskSize = "auto";
      additionalSpace = "1024M";
      copyChannel = false;
    };
in
if hasImage then built.images.${args.image} else fallback
