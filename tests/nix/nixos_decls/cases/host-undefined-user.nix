# The former docs/ci.md recipe: the gitea runner listed as a user. nixpkgs' runner module
# defines no such user (it runs as a DynamicUser), so users-groups' assertions fail.
{
  services.staging-vm.enable = true;
  services.staging-vm.users = [ "gitea-runner" ];
}
