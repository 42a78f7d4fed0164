# nixos/modules/services/networking/firewall.nix: networking.firewall.trustedInterfaces
# (listOf str, [ ]).
{ lib, ... }:
{
  options.networking.firewall.trustedInterfaces = lib.mkOption {
    type = lib.types.listOf lib.types.str;
    default = [ ];
  };
}
