# nixos/modules/virtualisation/docker.nix: virtualisation.docker.enable (bool, false) and
# virtualisation.docker.package (package, default pkgs.docker); the module adds group
# "docker" (users.groups.docker.gid = config.ids.gids.docker).
{ lib, pkgs, config, ... }:
{
  options.virtualisation.docker = {
    enable = lib.mkOption {
      type = lib.types.bool;
      default = false;
    };
    package = lib.mkOption {
      type = lib.types.package;
      default = pkgs.docker;
    };
  };
  config = lib.mkIf config.virtualisation.docker.enable { users.groups.docker.gid = 131; };
}
