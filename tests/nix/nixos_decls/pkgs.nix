# A stand-in for the few attributes of nixpkgs' package set the modules take from `pkgs`.
# Packages are fake derivations (types.package accepts them: lib.isDerivation); formats.toml
# has nixpkgs' type shape (pkgs/pkgs-lib/formats.nix: toml = json-like value type) and its
# generate returns a fake derivation that keeps the value, so tests can read what the module
# would write to /etc/stagingvm/config.toml.
{ lib }:
let
  drv = name: {
    type = "derivation";
    inherit name;
    outPath = "/nix/store/00000000000000000000000000000000-${name}";
  };
  # pkgs/pkgs-lib/formats.nix, json/toml `type`: null, bool, int, float, str, path,
  # attrsOf and listOf of the same, merged as nixpkgs merges them.
  tomlValue =
    with lib.types;
    let
      valueType =
        nullOr (oneOf [
          bool
          int
          float
          str
          path
          (attrsOf valueType)
          (listOf valueType)
        ])
        // {
          description = "TOML value";
        };
    in
    valueType;
  format = {
    type = tomlValue;
    generate = name: value: drv name // { stagingvmValue = value; };
  };
in
{
  inherit drv;
  pkgs = {
    inherit lib;
    qemu_kvm = drv "qemu-kvm";
    qemu = drv "qemu";
    swtpm = drv "swtpm";
    libvirt = drv "libvirt";
    OVMF = {
      fd = drv "OVMF-fd";
    };
    gitea-actions-runner = drv "gitea-actions-runner";
    coreutils = drv "coreutils";
    curl = drv "curl";
    gawk = drv "gawk";
    gitMinimal = drv "git-minimal";
    git = drv "git";
    gnused = drv "gnused";
    nodejs = drv "nodejs";
    wget = drv "wget";
    nix = drv "nix";
    jq = drv "jq";
    openssh = drv "openssh";
    bash = drv "bash";
    docker = drv "docker";
    # pkgs/build-support/trivial-builders: writeTextFile { name, text, executable,
    # destination, checkPhase, ... }; the stand-in keeps the text for the tests.
    writeTextFile =
      args:
      drv args.name
      // {
        stagingvmText = args.text;
        stagingvmArgs = removeAttrs args [ "text" ];
      };
    callPackage = _fn: _args: drv "stagingvm";
    # yaml (the runner's settings) has the same value type in formats.nix.
    formats.toml = _: format;
    formats.yaml = _: format;
  };
}
