# nixos/modules/security/sudo.nix (NixOS/nixpkgs at 249968aa226b344b475b419164042862b3b4e928):
# security.sudo.extraRules (listOf submodule: users, groups (listOf (either str int)), host
# (str, "ALL"), runAs (str, "ALL:ALL"), commands (listOf (either str (submodule { command
# (str); options (listOf enum, [ ]) })))), extraConfig (lines, ""), wheelNeedsPassword (bool,
# true), configFile (lines); and the part of its implementation that writes /etc/sudoers:
# the wheel rule at mkOrder 600 and configFile rendered from the rules, copied here so the
# tests compare what NixOS would write (toUserString, toGroupString, toCommandOptionsString,
# toCommandsString and the configFile text as written there).
{ lib, config, ... }:
let
  inherit (lib) mkOption types;
  cfg = config.security.sudo;
  toUserString = user: if (lib.isInt user) then "#${toString user}" else "${user}";
  toGroupString = group: if (lib.isInt group) then "%#${toString group}" else "%${group}";
  toCommandOptionsString =
    options: "${lib.concatStringsSep ":" options}${lib.optionalString (lib.length options != 0) ":"} ";
  toCommandsString =
    commands:
    lib.concatStringsSep ", " (
      map (
        command:
        if (lib.isString command) then
          command
        else
          "${toCommandOptionsString command.options}${command.command}"
      ) commands
    );
in
{
  options.security.sudo = {
    wheelNeedsPassword = mkOption {
      type = types.bool;
      default = true;
    };
    configFile = mkOption { type = types.lines; };
    extraConfig = mkOption {
      type = types.lines;
      default = "";
    };
    extraRules = mkOption {
      default = [ ];
      type =
        with types;
        listOf (submodule {
          options = {
            users = mkOption {
              type = with types; listOf (either str int);
              default = [ ];
            };
            groups = mkOption {
              type = with types; listOf (either str int);
              default = [ ];
            };
            host = mkOption {
              type = types.str;
              default = "ALL";
            };
            runAs = mkOption {
              type = with types; str;
              default = "ALL:ALL";
            };
            commands = mkOption {
              type =
                with types;
                listOf (
                  either str (submodule {
                    options = {
                      command = mkOption { type = with types; str; };
                      options = mkOption {
                        type =
                          with types;
                          listOf (enum [
                            "NOPASSWD"
                            "PASSWD"
                            "NOEXEC"
                            "EXEC"
                            "SETENV"
                            "NOSETENV"
                            "LOG_INPUT"
                            "NOLOG_INPUT"
                            "LOG_OUTPUT"
                            "NOLOG_OUTPUT"
                          ]);
                        default = [ ];
                      };
                    };
                  })
                );
            };
          };
        });
    };
  };

  config = {
    security.sudo.extraRules = lib.mkOrder 600 [
      {
        groups = [ "wheel" ];
        commands = [
          {
            command = "ALL";
            options = (if cfg.wheelNeedsPassword then [ "SETENV" ] else [ "NOPASSWD" "SETENV" ]);
          }
        ];
      }
    ];
    security.sudo.configFile = ''
      # Don't edit this file. Set the NixOS options ‘security.sudo.configFile’
      # or ‘security.sudo.extraRules’ instead.

      # Keep SSH_AUTH_SOCK so that pam_ssh_agent_auth.so can do its magic.
      Defaults env_keep+=SSH_AUTH_SOCK

      # "root" is allowed to do anything.
      root        ALL=(ALL:ALL) SETENV: ALL

      # extraRules
      ${lib.concatStringsSep "\n" (
        lib.lists.flatten (
          map (
            rule:
            lib.optionals (lib.length rule.commands != 0) [
              (map (
                user: "${toUserString user}	${rule.host}=(${rule.runAs})	${toCommandsString rule.commands}"
              ) rule.users)
              (map (
                group: "${toGroupString group}	${rule.host}=(${rule.runAs})	${toCommandsString rule.commands}"
              ) rule.groups)
            ]
          ) cfg.extraRules
        )
      )}

      ${cfg.extraConfig}
    '';
  };
}
