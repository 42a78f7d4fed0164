# services.staging-vm: the host side of stagingvm. Replaces the old module of the same name
# (modules/nixos/services/staging-vm.nix in the infra repo) and keeps its options. It
# installs `pr-test-vm`, enables libvirtd, writes /etc/stagingvm/config.toml from the options,
# and lets the tool itself define the NAT network and the storage pool (`pr-test-vm setup`),
# so the module and the CLI cannot disagree about them. See docs/nixos.md ("Migrating").
{
  config,
  options,
  lib,
  pkgs,
  ...
}:
let
  inherit (lib)
    mkOption
    mkEnableOption
    mkIf
    mkDefault
    types
    ;
  cfg = config.services.staging-vm;
  toml = pkgs.formats.toml { };
  configFile = toml.generate "stagingvm-config.toml" cfg.settings;

  # virtualisation.libvirtd.qemu.ovmf.enable is a real bool option up to NixOS 25.05. From
  # 25.11 on (nixpkgs PR #421549) QEMU's own OVMF images are always available and the
  # sub-module is a stub whose options are `nullOr` (default null), with an assertion that
  # fails when any of them is set. So: set it only where the option exists as a bool, asked
  # of the options themselves rather than of a version string (which misreads "25.11pre").
  qemuOptions = options.virtualisation.libvirtd.qemu.type.getSubOptions [ ];
  ovmfOptions = if qemuOptions ? ovmf then qemuOptions.ovmf.type.getSubOptions [ ] else { };
  hasOvmfOption = ovmfOptions ? enable && ovmfOptions.enable.type.name == "bool";

  # null = not set: pr-test-vm then derives the range from the subnet itself (its
  # default_dhcp_range), so the module and the CLI cannot disagree.
  dhcpRange = lib.filterAttrs (_: v: v != null) {
    dhcp_start = cfg.network.dhcpStart;
    dhcp_end = cfg.network.dhcpEnd;
  };
in
{
  options.services.staging-vm = {
    enable = mkEnableOption "stagingvm (pr-test-vm): throwaway libvirt VMs for testing NixOS configurations";

    package = mkOption {
      type = types.package;
      default = pkgs.callPackage ./package.nix { };
      defaultText = lib.literalExpression "pkgs.callPackage ./package.nix { }";
      description = "The stagingvm package providing `pr-test-vm`.";
    };

    uri = mkOption {
      type = types.str;
      default = "qemu:///system";
      description = "libvirt connection URI.";
    };

    network = {
      name = mkOption {
        type = types.str;
        default = "staging";
        description = "Name of the libvirt NAT network for staging VMs.";
      };
      bridge = mkOption {
        type = types.str;
        default = "virbr-staging";
        description = "Bridge interface of the staging network (at most 15 characters).";
      };
      subnet = mkOption {
        type = types.str;
        # Not 192.168.122.0/24 (the old default): that is libvirt's own `default` network.
        default = "192.168.150.0/24";
        description = "Subnet of the NAT network in CIDR notation.";
      };
      dhcpStart = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "192.168.150.10";
        description = ''
          Start of the DHCP range. Unset (null), the range follows `subnet`: from the 10th
          address (the 2nd in a subnet of fewer than 64) to the last before the broadcast
          address. Set both ends or neither.
        '';
      };
      dhcpEnd = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "192.168.150.254";
        description = "End of the DHCP range; see `dhcpStart`.";
      };
    };

    poolName = mkOption {
      type = types.str;
      default = "staging";
      description = "Name of the libvirt storage pool.";
    };

    storagePool = mkOption {
      type = types.str;
      default = "/var/lib/libvirt/images/stagingvm";
      description = "Directory of the storage pool (a folder of its own, not shared with other pools).";
    };

    dataDir = mkOption {
      type = types.str;
      default = "/var/lib/staging-vm";
      description = "stagingvm's data directory: SSH key, pinned host keys, console logs, build logs, GC roots.";
    };

    memory = mkOption {
      type = types.ints.positive;
      default = 2048;
      description = "Default RAM of a staging VM in MiB.";
    };

    vcpus = mkOption {
      type = types.ints.positive;
      default = 2;
      description = "Default number of vCPUs of a staging VM.";
    };

    users = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "gortium" ];
      description = ''
        Users who may run `pr-test-vm`: added to the `libvirtd` group (which is as good as
        root on this host) and given access to the data directory. Each must be a user the
        configuration defines (`users.users.NAME`). The old module added `gortium` to
        `libvirtd` by itself; this one adds only the users listed here. A CI runner that runs
        as a systemd `DynamicUser` (nixpkgs' gitea-actions-runner) is no static user: give its
        service the group instead (docs/ci.md, "The runner").
      '';
    };

    settings = mkOption {
      type = toml.type;
      default = { };
      description = ''
        Contents of /etc/stagingvm/config.toml. Filled from the options above; set keys here
        to add or override (e.g. `timeouts.lease = 300;` or `accel = "tcg";`).
      '';
    };

    setupOnBoot = mkOption {
      type = types.bool;
      default = true;
      description = "Run `pr-test-vm setup` (define and start network and pool) after libvirtd starts.";
    };
  };

  config = mkIf cfg.enable {
    services.staging-vm.settings = lib.mapAttrsRecursive (_: mkDefault) {
      uri = cfg.uri;
      pool_name = cfg.poolName;
      storage_pool = cfg.storagePool;
      data_dir = cfg.dataDir;
      memory = cfg.memory;
      vcpus = cfg.vcpus;
      network = {
        name = cfg.network.name;
        bridge = cfg.network.bridge;
        subnet = cfg.network.subnet;
      }
      // dhcpRange;
    };

    environment.etc."stagingvm/config.toml".source = configFile;
    environment.systemPackages = [ cfg.package ];

    virtualisation.libvirtd = {
      enable = true;
      qemu = {
        package = mkDefault pkgs.qemu_kvm;
        runAsRoot = mkDefault true;
        swtpm.enable = mkDefault true;
      }
      # Not `mkIf`: a definition of a missing option fails even under `mkIf false`.
      // lib.optionalAttrs hasOvmfOption { ovmf.enable = mkDefault true; };
      allowedBridges = [ cfg.network.bridge ];
    };

    users.users = lib.genAttrs cfg.users (_: {
      extraGroups = [ "libvirtd" ];
    });

    # Group libvirtd may use the data dir; setgid keeps new files in that group.
    systemd.tmpfiles.rules = [
      "d ${cfg.dataDir} 2770 root libvirtd -"
      "d ${cfg.storagePool} 0711 root root -"
    ];

    systemd.services.stagingvm-setup = mkIf cfg.setupOnBoot {
      description = "Define stagingvm's libvirt network and storage pool";
      after = [ "libvirtd.service" ];
      requires = [ "libvirtd.service" ];
      wantedBy = [ "multi-user.target" ];
      restartTriggers = [ configFile ];
      serviceConfig = {
        Type = "oneshot";
        RemainAfterExit = true;
        # A data dir of its own: what root would create in the shared one (lock files,
        # folders) could not be written by the users later.
        RuntimeDirectory = "stagingvm-setup";
        ExecStart = "${cfg.package}/bin/pr-test-vm --data-dir /run/stagingvm-setup setup";
      };
    };

    # DHCP and DNS from the guests reach libvirt's dnsmasq on the bridge; libvirt itself
    # adds the NAT and forwarding rules of the network.
    networking.firewall.trustedInterfaces = [ cfg.network.bridge ];

    assertions = [
      {
        assertion = builtins.stringLength cfg.network.bridge <= 15;
        message = "services.staging-vm.network.bridge: interface names have at most 15 characters";
      }
      {
        assertion = (cfg.network.dhcpStart == null) == (cfg.network.dhcpEnd == null);
        message = "services.staging-vm.network: set both dhcpStart and dhcpEnd, or neither (then the range follows the subnet)";
      }
    ];

    warnings = lib.optional (cfg.users == [ ]) (
      "services.staging-vm.users is empty: nobody but root can run pr-test-vm (it needs the "
      + "libvirtd group). The old staging-vm module added gortium to libvirtd by itself; this "
      + "one only adds the users listed, e.g. services.staging-vm.users = [ \"gortium\" ];"
    );
  };
}
