# stagingvm as a flake: the package, the host module (services.staging-vm), the guest module,
# and checks (the package's unit tests, an evaluation of the host module).
#
# Supported: NixOS 25.11 and 26.05, the releases nixpkgs itself supports (lib.trivial's
# oldestSupportedRelease is 2511 on master, 26.11pre); 26.05 is the current stable and the
# pin. The module-eval checks evaluate the host module on both (`nixpkgs` and
# `nixpkgs-previous`); tests/nix/test_module_eval.py also evaluates it, with nixpkgs' lib,
# against the 25.05 shape of the libvirtd options (qemu.ovmf still real). Users who follow
# their own nixpkgs can also point `nixpkgs-previous` at it to skip a second download:
#   inputs.stagingvm.inputs.nixpkgs.follows = "nixpkgs";
#   inputs.stagingvm.inputs.nixpkgs-previous.follows = "nixpkgs";
#
# The flake lives in nix/ of the repository; refer to it with `?dir=nix`, e.g.
#   inputs.stagingvm.url = "git+https://git.example.org/infra/stagingvm?dir=nix";
{
  description = "stagingvm (pr-test-vm): boot a PR's NixOS configuration in a throwaway libvirt VM and check its restrictions";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05";
  inputs.nixpkgs-previous.url = "github:NixOS/nixpkgs/nixos-25.11";

  outputs =
    {
      self,
      nixpkgs,
      nixpkgs-previous,
    }:
    let
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
      systemOf = pkgs: pkgs.stdenv.hostPlatform.system;
    in
    {
      packages = forAllSystems (pkgs: rec {
        stagingvm = pkgs.callPackage ./package.nix { };
        default = stagingvm;
      });

      apps = forAllSystems (pkgs: {
        default = {
          type = "app";
          program = "${self.packages.${systemOf pkgs}.stagingvm}/bin/pr-test-vm";
        };
      });

      overlays.default = final: _prev: { stagingvm = final.callPackage ./package.nix { }; };

      nixosModules = {
        default =
          { pkgs, lib, ... }:
          {
            imports = [ ./module.nix ];
            services.staging-vm.package = lib.mkDefault self.packages.${systemOf pkgs}.stagingvm;
          };
        guest = ./guest.nix;
        # the hardened ai-worker design (docs/hardened-design.md)
        ai-worker = ./ai-worker.nix;
      };

      checks = forAllSystems (
        pkgs:
        let
          system = systemOf pkgs;
          # The host module evaluated on a minimal system of one nixpkgs: options type-check,
          # assertions hold, the setup unit and the config file come out as expected.
          moduleEval =
            source: name:
            let
              host = source.lib.nixosSystem {
                inherit system;
                modules = [
                  self.nixosModules.default
                  {
                    services.staging-vm.enable = true;
                    services.staging-vm.users = [ "alice" ];
                    users.users.alice.isNormalUser = true;
                    boot.loader.grub.devices = [ "/dev/vda" ];
                    fileSystems."/".device = "/dev/vda1";
                    system.stateVersion = "25.11";
                  }
                ];
              };
              failed = map (a: a.message) (builtins.filter (a: !a.assertion) host.config.assertions);
            in
            if failed != [ ] then
              throw "stagingvm ${name}: failed assertions: ${builtins.concatStringsSep "; " failed}"
            else
              pkgs.writeText "stagingvm-${name}.json" (
                builtins.toJSON {
                  nixpkgs = source.lib.version;
                  setup = host.config.systemd.services.stagingvm-setup.serviceConfig.ExecStart;
                  config = "${host.config.environment.etc."stagingvm/config.toml".source}";
                  groups = host.config.users.users.alice.extraGroups;
                  toplevel = host.config.system.build.toplevel.drvPath;
                }
              );
        in
        {
          stagingvm = self.packages.${system}.stagingvm; # runs tests/unit
          module-eval = moduleEval nixpkgs "module-eval";
          module-eval-previous = moduleEval nixpkgs-previous "module-eval-previous";
        }
      );
    };
}
