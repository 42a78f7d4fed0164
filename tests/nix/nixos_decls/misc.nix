# nixos/modules/misc/assertions.nix: assertions (listOf unspecified, default [ ]) and
# warnings (listOf str, default [ ]). nixos/modules/system/activation/top-level.nix fails the
# build on a false assertion and prints the warnings; eval.nix does the same sorting.
{ lib, ... }:
{
  options = {
    assertions = lib.mkOption {
      type = lib.types.listOf lib.types.unspecified;
      internal = true;
      default = [ ];
    };
    warnings = lib.mkOption {
      internal = true;
      default = [ ];
      type = lib.types.listOf lib.types.str;
    };
  };
}
