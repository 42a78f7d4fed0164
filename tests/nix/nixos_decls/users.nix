# nixos/modules/config/users-groups.nix: users.users and users.groups (attrsOf submodule), and
# the module's per-user assertions (isSystemUser xor isNormalUser; group set), which a user
# defined only through `extraGroups` fails; a normal user's group defaults to "users" and its
# home to /home/NAME (userOpts' `config`, mkIf isNormalUser). Only the sub-options used here
# are declared.
{ lib, config, ... }:
let
  inherit (lib) mkOption types;
  userOpts =
    { name, config, ... }:
    {
      config = lib.mkIf config.isNormalUser {
        group = lib.mkDefault "users";
        home = lib.mkDefault "/home/${config.name}";
      };
      options = {
        name = mkOption {
          type = types.str;
          default = name;
        };
        uid = mkOption {
          type = with types; nullOr int;
          default = null;
        };
        isSystemUser = mkOption {
          type = types.bool;
          default = false;
        };
        isNormalUser = mkOption {
          type = types.bool;
          default = false;
        };
        group = mkOption {
          type = types.str;
          default = "";
        };
        extraGroups = mkOption {
          type = types.listOf types.str;
          default = [ ];
        };
        home = mkOption {
          type = types.str;
          default = "/var/empty";
        };
      };
    };
  groupOpts =
    { name, ... }:
    {
      options = {
        name = mkOption {
          type = types.str;
          default = name;
        };
        gid = mkOption {
          type = with types; nullOr int;
          default = null;
        };
        members = mkOption {
          type = with types; listOf str;
          default = [ ];
        };
      };
    };
in
{
  options.users = {
    users = mkOption {
      default = { };
      type = with types; attrsOf (submodule userOpts);
    };
    groups = mkOption {
      default = { };
      type = with types; attrsOf (submodule groupOpts);
    };
  };

  config = {
    users.users = {
      root = {
        uid = 0;
        home = "/root";
        group = "root";
      };
      nobody = {
        uid = 65534;
        isSystemUser = true;
        group = "nogroup";
      };
    };
    users.groups = {
      root.gid = 0;
      nogroup.gid = 65534;
    };
    assertions = lib.flatten (
      lib.mapAttrsToList (_: user: [
        {
          assertion =
            let
              isEffectivelySystemUser =
                user.isSystemUser || (user.uid != null && user.uid < 1000 && !user.isNormalUser);
            in
            lib.xor isEffectivelySystemUser user.isNormalUser;
          message = "Exactly one of users.users.${user.name}.isSystemUser and users.users.${user.name}.isNormalUser must be set.";
        }
        {
          assertion = user.group != "";
          message = "users.users.${user.name}.group is unset.";
        }
      ]) config.users.users
    );
  };
}
