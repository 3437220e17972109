// Lint: typescript-eslint's recommended rules, and a line-length limit (the formatter wraps code at 140; long
// strings, template literals and regular expressions are left whole, since breaking them would hurt more).
import js from '@eslint/js'
import tseslint from 'typescript-eslint'

export default tseslint.config(
  {ignores: ['dist/', 'node_modules/', 'coverage/', 'bench/', 'bin/']},
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      'max-len': [
        'error',
        {code: 160, comments: 160, ignoreStrings: true, ignoreTemplateLiterals: true, ignoreRegExpLiterals: true, ignoreUrls: true},
      ],
      '@typescript-eslint/no-unused-vars': ['error', {argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none'}],
      '@typescript-eslint/no-non-null-assertion': 'off',
      // Matching control characters is the point of the safety checks (render/safe.ts) and of stripping escapes.
      'no-control-regex': 'off',
      // Tests match output exactly as printed, spaces included.
      'no-regex-spaces': 'off',
    },
  },
)
