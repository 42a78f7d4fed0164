{ lib, ... }:
let
  inherit (lib) mkOption types;
in
{
  # nixos/modules/config/system-path.nix: environment.systemPackages, listOf package, default [ ].
  options.environment.systemPackages = mkOption {
    type = types.listOf types.package;
    default = [ ];
  };

  # nixos/modules/system/etc/etc.nix: environment.etc, attrsOf submodule; an entry has
  # enable (bool, true), target (str, the name), text (nullOr lines, null), source (path; from
  # text when text is set), mode (str, "symlink"), uid/gid (int, 0), user/group (str, "+0").
  options.environment.etc = mkOption {
    default = { };
    type = types.attrsOf (
      types.submodule (
        { name, config, ... }:
        {
          options = {
            enable = mkOption {
              type = types.bool;
              default = true;
            };
            target = mkOption { type = types.str; };
            text = mkOption {
              default = null;
              type = types.nullOr types.lines;
            };
            source = mkOption { type = types.path; };
            mode = mkOption {
              type = types.str;
              default = "symlink";
            };
            uid = mkOption {
              default = 0;
              type = types.int;
            };
            gid = mkOption {
              default = 0;
              type = types.int;
            };
            user = mkOption {
              default = "+${toString config.uid}";
              type = types.str;
            };
            group = mkOption {
              default = "+${toString config.gid}";
              type = types.str;
            };
          };
          config = {
            target = lib.mkDefault name;
            source = lib.mkIf (config.text != null) (
              lib.mkDerivedConfig { value = "/nix/store/00000000000000000000000000000000-etc-${baseNameOf name}"; } lib.id
            );
          };
        }
      )
    );
  };
}
