# The policy lab's spec (stagingvm/checks/designfiles/hardened.json) as the module's options.
let
  spec = builtins.fromJSON (builtins.readFile ../../../../stagingvm/checks/designfiles/hardened.json);
in
{
  virtualisation.docker.enable = true;
  stagingvm.aiWorker = {
    enable = true;
    inherit (spec)
      user
      containers
      images
      run
      logTail
      audit
      ;
  };
}
