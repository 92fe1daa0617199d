// ESLint 9 with eslint-plugin-security's recommended rules, the setup the
// plugin's README gives, over every JavaScript file of the tree.
import security from 'eslint-plugin-security';

export default [
  security.configs.recommended,
  {
    files: ['**/*.js', '**/*.cjs', '**/*.mjs'],
    languageOptions: { ecmaVersion: 'latest', sourceType: 'commonjs' },
  },
  { ignores: ['**/*.min.js'] },
];
