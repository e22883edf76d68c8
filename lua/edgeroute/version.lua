-- The plugin's release; equal to the npm package's version (a test checks
-- it), so an agent can tell when nginx runs a plugin of another release.
return "0.2.0"
