# nixos/modules/services/continuous-integration/gitea-actions-runner.nix, as on nixpkgs master
# (tokenFile read through LoadCredential): the options (package; instances.<name>: enable,
# name, url, token, tokenFile, labels, settings, hostPackages with nodejs in its default) and
# the unit it makes, gitea-runner-<name>, which runs as a systemd DynamicUser (User =
# "gitea-runner", StateDirectory = [ "gitea-runner" "gitea-runner/<name>" ], HOME in it),
# with hostPackages on its PATH only for a `:host` label. Its assertions: token xor
# tokenFile; a docker label needs docker or podman. virtualisation.docker.enable and
# virtualisation.podman.enable (nixos/modules/virtualisation/{docker,podman}/…: bool, false)
# are declared for them. The register script in ExecStartPre is left out.
{ lib, config, pkgs, ... }:
let
  inherit (lib) mkOption types;
  cfg = config.services.gitea-actions-runner;
  hasDockerScheme =
    instance: instance.labels == [ ] || lib.any (label: lib.hasInfix ":docker:" label) instance.labels;
  wantsContainerRuntime = lib.any hasDockerScheme (lib.attrValues cfg.instances);
  hasHostScheme = instance: lib.any (label: lib.hasSuffix ":host" label) instance.labels;
  hasDocker = config.virtualisation.docker.enable;
  hasPodman = config.virtualisation.podman.enable;
  tokenXorTokenFile =
    instance:
    (instance.token == null && instance.tokenFile != null)
    || (instance.token != null && instance.tokenFile == null);
in
{
  options.virtualisation.docker.enable = mkOption {
    type = types.bool;
    default = false;
  };
  options.virtualisation.podman.enable = mkOption {
    type = types.bool;
    default = false;
  };
  options.services.gitea-actions-runner = with types; {
    package = mkOption {
      type = package;
      default = pkgs.gitea-actions-runner;
    };
    instances = mkOption {
      default = { };
      type = attrsOf (submodule {
        options = {
          enable = lib.mkEnableOption "Gitea Actions Runner instance";
          name = mkOption { type = str; };
          url = mkOption { type = str; };
          token = mkOption {
            type = nullOr str;
            default = null;
          };
          tokenFile = mkOption {
            type = nullOr (either str path);
            default = null;
          };
          labels = mkOption { type = listOf str; };
          settings = mkOption {
            type = types.submodule {
              freeformType = (pkgs.formats.yaml { }).type;
              options.cache.external_secret_file = mkOption {
                type = nullOr (either str path);
                default = null;
              };
            };
            default = { };
          };
          hostPackages = mkOption {
            type = listOf package;
            default = with pkgs; [
              bash
              coreutils
              curl
              gawk
              gitMinimal
              gnused
              nodejs
              wget
            ];
          };
        };
      });
    };
  };

  config = lib.mkIf (cfg.instances != { }) {
    assertions = [
      {
        assertion = lib.any tokenXorTokenFile (lib.attrValues cfg.instances);
        message = "Instances of gitea-actions-runner can have `token` or `tokenFile`, not both.";
      }
      {
        assertion = wantsContainerRuntime -> hasDocker || hasPodman;
        message = "Label configuration on gitea-actions-runner instance requires either docker or podman.";
      }
    ];
    systemd.services = lib.mapAttrs' (
      name: instance:
      let
        wantsHost = hasHostScheme instance;
        wantsDocker = hasDockerScheme instance && hasDocker;
        wantsPodman = hasDockerScheme instance && hasPodman;
      in
      lib.nameValuePair "gitea-runner-${name}" {
        inherit (instance) enable;
        description = "Gitea Actions Runner";
        wants = [ "network-online.target" ];
        after = [ "network-online.target" ];
        wantedBy = [ "multi-user.target" ];
        environment = lib.optionalAttrs wantsPodman {
          DOCKER_HOST = "unix:///run/podman/podman.sock";
        }
        // {
          HOME = "/var/lib/gitea-runner/${name}";
          INSTANCE_DIR = "/var/lib/gitea-runner/${name}";
          TOKEN_HASH_FILE = "/var/lib/gitea-runner/${name}/.token-hash";
          LABELS_FILE = "/var/lib/gitea-runner/${name}/.labels";
        };
        path = [ pkgs.coreutils ] ++ lib.optionals wantsHost instance.hostPackages;
        serviceConfig = {
          DynamicUser = true;
          User = "gitea-runner";
          StateDirectory = [
            "gitea-runner"
            "gitea-runner/${name}"
          ];
          WorkingDirectory = "/var/lib/gitea-runner/${name}";
          Restart = "on-failure";
          RestartSec = 2;
          ExecStart = "${cfg.package}/bin/gitea-runner daemon --config /nix/store/00000000000000000000000000000000-config.yaml";
          SupplementaryGroups =
            lib.optionals wantsDocker [ "docker" ] ++ lib.optionals wantsPodman [ "podman" ];
          LoadCredential = [
            "token:${if instance.tokenFile != null then toString instance.tokenFile else "/nix/store/00000000000000000000000000000000-token"}"
          ];
          RuntimeDirectory = "gitea-runner/${name}";
          RuntimeDirectoryMode = "0700";
        };
      }
    ) cfg.instances;
  };
}
