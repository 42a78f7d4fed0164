# nixos/modules/services/networking/firewall.nix: networking.firewall.enable (bool, true),
# trustedInterfaces (listOf str, [ ]), allowedTCPPorts (listOf port, [ ]).
{ lib, ... }:
{
  options.networking.firewall = {
    enable = lib.mkOption {
      type = lib.types.bool;
      default = true;
    };
    trustedInterfaces = lib.mkOption {
      type = lib.types.listOf lib.types.str;
      default = [ ];
    };
    allowedTCPPorts = lib.mkOption {
      type = lib.types.listOf lib.types.port;
      default = [ ];
    };
  };
}
