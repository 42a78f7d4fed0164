# nixos/lib/systemd-unit-options.nix (unitOption, the service options) and
# nixos/modules/system/boot/systemd.nix (systemd.services: attrsOf submodule);
# nixos/modules/system/boot/systemd/tmpfiles.nix (systemd.tmpfiles.rules: listOf str, [ ]).
{ lib, ... }:
let
  inherit (lib) mkOption types;
  # unitOption: list definitions are concatenated, anything else must be equal.
  unitOption = lib.mkOptionType {
    name = "systemd option";
    merge =
      loc: defs:
      let
        defs' = lib.filterOverrides defs;
      in
      if lib.any (def: lib.isList def.value) defs' then
        lib.concatMap (def: lib.toList def.value) defs'
      else
        lib.mergeEqualOption loc defs';
  };
  listOfUnits = mkOption {
    default = [ ];
    type = types.listOf types.str;
  };
  serviceOpts = {
    options = {
      enable = mkOption {
        default = true;
        type = types.bool;
      };
      description = mkOption {
        default = "";
        type = types.singleLineStr;
      };
      after = listOfUnits;
      before = listOfUnits;
      requires = listOfUnits;
      wants = listOfUnits;
      wantedBy = listOfUnits;
      restartTriggers = mkOption {
        default = [ ];
        type = types.listOf types.unspecified;
      };
      path = mkOption {
        default = [ ];
        type = with types; listOf (oneOf [
          package
          str
        ]);
      };
      environment = mkOption {
        default = { };
        type = with types; attrsOf (nullOr (oneOf [
          str
          path
          package
        ]));
      };
      serviceConfig = mkOption {
        default = { };
        type = types.attrsOf unitOption;
      };
    };
  };
in
{
  options.systemd = {
    services = mkOption {
      default = { };
      type = types.attrsOf (types.submodule serviceOpts);
    };
    tmpfiles.rules = mkOption {
      type = types.listOf types.str;
      default = [ ];
    };
  };
}
