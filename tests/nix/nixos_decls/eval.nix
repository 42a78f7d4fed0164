# Evaluates stagingvm's host or guest module with nixpkgs' real lib.evalModules against the
# declarations in this folder, plus one case module, and returns what the tests compare.
#
#   nix-instantiate --eval --strict --json tests/nix/nixos_decls/eval.nix \
#     --arg libPath …/nixpkgs-lib/lib --argstr module host --argstr libvirtd 25.11 \
#     --arg case ./cases/defaults.nix
#
# Failed assertions and warnings are sorted out as nixos/modules/system/activation/top-level.nix
# does before it builds (it would throw on the first list; eval.nix returns both).
{
  libPath, # the folder of nixpkgs' lib
  module, # "host" (nix/module.nix), "guest" (nix/guest.nix) or "ai-worker" (nix/ai-worker.nix)
  # "25.05": qemu.ovmf is a real option; "25.11": it is the removal stub (25.11, 26.05,
  # 26.11pre); "no-ovmf": no qemu.ovmf at all, as when nixpkgs drops the stub.
  libvirtd ? "25.11",
  # lib.version as a channel reports it, e.g. "25.11pre-git" on unstable before the release.
  version ? null,
  case,
}:
let
  vendored = import libPath;
  lib =
    if version == null then
      vendored
    else
      vendored.extend (
        _: super: {
          inherit version;
          trivial = super.trivial // {
            inherit version;
          };
        }
      );
  stub = import ./pkgs.nix { inherit lib; };
  repo = ../../..;
  common = [
    ./misc.nix
    ./environment.nix
    ./users.nix
    ./systemd.nix
    ./firewall.nix
    { _module.args.pkgs = stub.pkgs; }
  ];
  shapes = {
    "25.05" = ./libvirtd-25.05.nix;
    "25.11" = ./libvirtd-25.11.nix;
    "no-ovmf" = import ./libvirtd-common.nix { ovmf = null; };
  };
  modules = {
    host = common ++ [
      shapes.${libvirtd}
      ./gitea-actions-runner.nix
      (repo + "/nix/module.nix")
    ];
    guest = common ++ [
      ./guest-options.nix
      (repo + "/nix/guest.nix")
    ];
    ai-worker = common ++ [
      ./sudo.nix
      ./docker.nix
      (repo + "/nix/ai-worker.nix")
    ];
  };
  evaluated = lib.evalModules { modules = modules.${module} ++ [ case ]; };
  inherit (evaluated) config;

  failedAssertions = map (a: a.message) (lib.filter (a: !a.assertion) config.assertions);

  host = {
    settings = config.services.staging-vm.settings;
    configFile = config.environment.etc."stagingvm/config.toml".source.stagingvmValue or null;
    libvirtd = {
      inherit (config.virtualisation.libvirtd) enable allowedBridges;
      qemu = {
        inherit (config.virtualisation.libvirtd.qemu) runAsRoot;
      ovmf = config.virtualisation.libvirtd.qemu.ovmf or "absent";
        package = config.virtualisation.libvirtd.qemu.package.name;
        swtpm = config.virtualisation.libvirtd.qemu.swtpm.enable;
      };
    };
    users = lib.mapAttrs (_: u: u.extraGroups) config.users.users;
    tmpfiles = config.systemd.tmpfiles.rules;
    trustedInterfaces = config.networking.firewall.trustedInterfaces;
    services = lib.mapAttrs (_: s: {
      inherit (s) serviceConfig after requires wantedBy environment;
      path = map (p: p.name or p) s.path;
    }) config.systemd.services;
    systemPackages = map (p: p.name) config.environment.systemPackages;
  };

  guest = {
    inherit (config.boot) kernelParams growPartition;
    loaderTimeout = config.boot.loader.timeout;
    grub = { inherit (config.boot.loader.grub) enable devices efiSupport; };
    systemdBoot = config.boot.loader.systemd-boot.enable;
    fileSystems = config.fileSystems;
    swapDevices = config.swapDevices;
    luks = config.boot.initrd.luks.devices;
    openssh = {
      inherit (config.services.openssh) enable authorizedKeysFiles;
      inherit (config.services.openssh.settings) PermitRootLogin;
    };
    qemuGuest = config.services.qemuGuest.enable;
    networking = {
      inherit (config.networking) useDHCP interfaces defaultGateway;
      wireless = config.networking.wireless.enable;
    };
    tmpfiles = config.systemd.tmpfiles.rules;
    credentials = config.systemd.services.systemd-tmpfiles-setup.serviceConfig.LoadCredential or [ ];
  };
  aiWorker =
    let
      cfg = config.stagingvm.aiWorker;
    in
    {
      inherit (cfg) spec sudoCommands;
      helper = cfg.helper.stagingvmText;
      helperArgs = cfg.helper.stagingvmArgs;
      sudoers = config.security.sudo.configFile;
      inherit (config.security.sudo) extraRules;
      users = lib.mapAttrs (_: u: { inherit (u) extraGroups isNormalUser group; }) config.users.users;
      systemPackages = map (p: p.name) config.environment.systemPackages;
    };
  # Every NixOS option declared for this evaluation (stagingvm's own, the module system's
  # and hidden ones left out): docs/nixos.md's table must name each (tests/nix/test_module_eval.py).
  ours = [ "_module" "services.staging-vm" "stagingvm.guest" "stagingvm.aiWorker" ];
  declared = lib.filter (name: !lib.any (p: name == p || lib.hasPrefix "${p}." name) ours) (
    map (o: lib.showOption o.loc) (
      lib.filter (o: o.visible or true != false) (lib.collect lib.isOption evaluated.options)
    )
  );
in
{
  inherit failedAssertions declared;
  inherit (config) warnings;
  values =
    {
      inherit host guest;
      ai-worker = aiWorker;
    }
    .${module};
}
