# stagingvm as a flake: the package, the host module (services.staging-vm), the guest module,
# and checks (the package's unit tests, an evaluation of the host module).
#
# The flake lives in nix/ of the repository; refer to it with `?dir=nix`, e.g.
#   inputs.stagingvm.url = "git+https://git.example.org/infra/stagingvm?dir=nix";
{
  description = "stagingvm (pr-test-vm): boot a PR's NixOS configuration in a throwaway libvirt VM and check its restrictions";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.05";

  outputs =
    { self, nixpkgs }:
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
      };

      checks = forAllSystems (
        pkgs:
        let
          # The host module evaluated on a minimal system: options type-check, the setup unit
          # and the config file come out as expected.
          host = nixpkgs.lib.nixosSystem {
            system = systemOf pkgs;
            modules = [
              self.nixosModules.default
              {
                services.staging-vm.enable = true;
                services.staging-vm.users = [ "alice" ];
                users.users.alice.isNormalUser = true;
                boot.loader.grub.devices = [ "/dev/vda" ];
                fileSystems."/".device = "/dev/vda1";
                system.stateVersion = "25.05";
              }
            ];
          };
        in
        {
          stagingvm = self.packages.${systemOf pkgs}.stagingvm; # runs tests/unit
          module-eval = pkgs.writeText "stagingvm-module-eval.json" (
            builtins.toJSON {
              setup = host.config.systemd.services.stagingvm-setup.serviceConfig.ExecStart;
              config = "${host.config.environment.etc."stagingvm/config.toml".source}";
              groups = host.config.users.users.alice.extraGroups;
            }
          );
        }
      );
    };
}
