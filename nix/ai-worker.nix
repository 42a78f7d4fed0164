# stagingvm.nixosModules.ai-worker: the hardened ai-worker design (docs/hardened-design.md).
#
# The restricted user gets no docker access at all: only a root-owned helper, `ai-docker`,
# with fixed verbs (ps; inspect, logs, restart of listed containers; run of listed images
# with fixed, unprivileged options) that builds every docker argument vector itself, and
# sudo rules with exact arguments for it and for the listed audit commands. The helper is
# ../stagingvm/checks/designfiles/ai-docker.in filled in with these options, exactly as
# stagingvm.checks.hardened fills it in for the policy lab's guests (tests/nix compares the
# two byte for byte), and `stagingvm.aiWorker.spec` is what `pr-test-vm policy from-module`
# turns into the battery's policy.
#
# Not offered, on purpose: exec, cp, attach, commit, export, save, load, import, tag, push,
# build, compose, stop/rm/kill/prune, volumes, networks. For ollama, use its HTTP API.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  inherit (lib) mkOption types;
  cfg = config.stagingvm.aiWorker;
  sw = "/run/current-system/sw/bin"; # root-owned: nothing a user writes comes first here
  helperPath = "${sw}/ai-docker";
  # The patterns stagingvm.checks.hardened checks a spec against: no shell word, sudoers
  # separator or wildcard can get into the helper or the rules.
  name = types.strMatching "[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}";
  image = types.strMatching "[a-z0-9][a-z0-9._/:@-]{0,254}";
  size = types.strMatching "[1-9][0-9]{0,5}[kmg]";
  word = types.strMatching "[A-Za-z0-9_./+-]{1,128}";
  toolName = "[a-z0-9][a-z0-9._-]{0,63}";
  privileged = [
    "docker"
    "wheel"
    "sudo"
    "root"
    "adm"
    "disk"
    "shadow"
    "staff"
    "lxd"
    "libvirtd"
    "libvirt"
    "kvm"
  ];

  words = lib.concatMapStringsSep " " (i: "'${i}'");
  helperText =
    builtins.replaceStrings
      [
        "@bash@"
        "@path@"
        "@docker@"
        "@services@"
        "@images@"
        "@logTail@"
        "@tmpfsSize@"
        "@pidsLimit@"
        "@memory@"
      ]
      [
        "${pkgs.bash}/bin/bash"
        sw
        "${cfg.dockerPackage}/bin/docker"
        (words cfg.containers)
        (words cfg.images)
        (toString cfg.logTail)
        cfg.run.tmpfsSize
        (toString cfg.run.pidsLimit)
        cfg.run.memory
      ]
      (builtins.readFile ../stagingvm/checks/designfiles/ai-docker.in);
  helper = pkgs.writeTextFile {
    name = "ai-docker";
    destination = "/bin/ai-docker";
    executable = true;
    text = helperText;
    checkPhase = "${pkgs.bash}/bin/bash -n $target";
  };

  sudoImage = builtins.replaceStrings [ ":" ] [ "\\:" ];
  audit = argv: "${sw}/${lib.head argv} ${if lib.length argv > 1 then lib.concatStringsSep " " (lib.tail argv) else ''""''}";
  commands = [
    "${helperPath} ps"
  ]
  ++ lib.concatMap (c: [
    "${helperPath} inspect ${c}"
    "${helperPath} logs ${c}"
    "${helperPath} restart ${c}"
  ]) cfg.containers
  ++ map (i: "${helperPath} run ${sudoImage i} *") cfg.images
  ++ map audit cfg.audit;

  # Every sudo rule that names the user, from any module: only the generated ones may.
  # (by name, or by a group it is in: its primary group too)
  userGroups = [ config.users.users.${cfg.user}.group ] ++ groupsOf;
  forUser = lib.filter (
    r: lib.elem cfg.user r.users || lib.any (g: lib.elem g userGroups) r.groups
  ) config.security.sudo.extraRules;
  ruleCommands = lib.concatMap (r: map (c: if lib.isString c then c else c.command) r.commands) forUser;
  foreign = lib.filter (c: !lib.elem c commands) ruleCommands;
  badRunAs = lib.filter (r: r.runAs != "root") forUser;
  groupsOf = config.users.users.${cfg.user}.extraGroups;
  memberOf = lib.filter (g: lib.elem cfg.user (config.users.groups.${g}.members or [ ])) privileged;
in
{
  options.stagingvm.aiWorker = {
    enable = lib.mkEnableOption "the hardened ai-worker design: a fixed-verb docker helper behind exact sudo rules";
    user = mkOption {
      type = types.strMatching "[a-z_][a-z0-9_-]{0,31}";
      default = "ai-worker";
      description = "The restricted user. It is put in no privileged group.";
    };
    containers = mkOption {
      type = types.listOf name;
      default = [ ];
      example = [ "ollama" ];
      description = "Containers the user may inspect (no environment), read the logs of and restart.";
    };
    images = mkOption {
      type = types.listOf image;
      default = [ ];
      example = [ "alpine:3.20" ];
      description = "Images the user may run: always --rm, no network, read-only, all capabilities dropped, no-new-privileges, as 65534:65534, with the limits below.";
    };
    run = {
      memory = mkOption {
        type = size;
        default = "256m";
        description = "`--memory` of every container the helper runs.";
      };
      pidsLimit = mkOption {
        type = types.ints.between 1 4096;
        default = 64;
        description = "`--pids-limit` of every container the helper runs.";
      };
      tmpfsSize = mkOption {
        type = size;
        default = "16m";
        description = "Size of the /tmp tmpfs of every container the helper runs.";
      };
    };
    logTail = mkOption {
      type = types.ints.between 1 100000;
      default = 500;
      description = "`ai-docker logs` shows this many last lines.";
    };
    audit = mkOption {
      type = types.listOf (types.nonEmptyListOf word);
      default = [
        [ "iptables" "-L" "-n" "-v" ]
        [ "iptables" "-S" ]
        [ "journalctl" "--no-pager" "-t" "kernel" "-n" "100" ]
        [ "journalctl" "--no-pager" "-u" "firewall" "-n" "50" ]
        [ "sshd" "-T" ]
        [ "ss" "-tlnp" ]
      ];
      description = ''
        Audit commands the user may run as root, each exactly as given: a program of the
        system profile (${sw}) and its arguments; one with no arguments allows none.
        Keep pagers off (`journalctl --no-pager`: a pager run as root is a shell).
      '';
    };
    extraGroups = mkOption {
      type = types.listOf types.str;
      default = [ ];
      description = "The user's groups (forced: other modules' additions are dropped). None may be privileged.";
    };
    dockerPackage = mkOption {
      type = types.package;
      default = config.virtualisation.docker.package;
      defaultText = lib.literalExpression "config.virtualisation.docker.package";
      description = "The docker client the helper runs, by its store path.";
    };
    spec = mkOption {
      readOnly = true;
      type = types.attrsOf types.anything;
      description = "These options as JSON for `pr-test-vm policy from-module` (`nix eval --json …config.stagingvm.aiWorker.spec`).";
    };
    helper = mkOption {
      readOnly = true;
      type = types.package;
      description = "The generated helper (bin/ai-docker).";
    };
    sudoCommands = mkOption {
      readOnly = true;
      type = types.listOf types.str;
      description = "The sudo commands the module allows, in order.";
    };
  };

  config = lib.mkIf cfg.enable {
    stagingvm.aiWorker = {
      spec = {
        inherit (cfg)
          user
          containers
          images
          logTail
          audit
          ;
        run = { inherit (cfg.run) memory pidsLimit tmpfsSize; };
      };
      inherit helper;
      sudoCommands = commands;
    };
    users.users.${cfg.user} = {
      isNormalUser = lib.mkDefault true;
      extraGroups = lib.mkForce cfg.extraGroups; # drops e.g. seed 000's [ "docker" ]
    };
    environment.systemPackages = [ helper ];
    security.sudo.extraRules = [
      {
        users = [ cfg.user ];
        runAs = "root"; # the option's default, ALL:ALL, lets the user pick any target
        commands = map (command: {
          inherit command;
          options = [ "NOPASSWD" ];
        }) commands;
      }
    ];
    security.sudo.extraConfig = "Defaults:${cfg.user} !setenv, env_reset";
    assertions = [
      {
        assertion = !lib.any (g: lib.elem g privileged) groupsOf && memberOf == [ ];
        message = "stagingvm.aiWorker: ${cfg.user} is in a privileged group (${lib.concatStringsSep ", " (lib.unique (lib.intersectLists privileged groupsOf ++ memberOf))}): the docker group alone is root on the host. Remove it (users.users.${cfg.user}.extraGroups, users.groups.<name>.members).";
      }
      {
        assertion = foreign == [ ] && badRunAs == [ ];
        message = "stagingvm.aiWorker: a sudo rule for ${cfg.user} is not one the module generates (${lib.concatStringsSep "; " (foreign ++ map (r: "runAs ${r.runAs}") badRunAs)}): wildcards and other commands give root. Offer it through the module's options instead.";
      }
      {
        assertion = lib.all (argv: builtins.match toolName (lib.head argv) != null) cfg.audit;
        message = "stagingvm.aiWorker.audit: each command starts with a program name of the system profile (not a path).";
      }
    ];
  };
}
