import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['**/node_modules/**', '**/dist/**', '.data/**', 'deploy/local/.cache/**', 'build/**', 'loadtest/**/*.js'] },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }],
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-syntax': ['error', { selector: 'ExportAllDeclaration', message: 'No export *: name what a package exports.' }],
    },
  },
  {
    // Test doubles live in each package's test/ folder; shipped code must never reach for one.
    files: ['{packages,services}/*/src/**/*.ts'],
    ignores: ['**/*.test.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ regex: '(^|/)test/', message: 'test/ holds test doubles: import them from tests only.' }] }],
    },
  },
  {
    // A skipped or focused test proves nothing and hides the rest: a test that cannot run fails.
    files: ['**/*.test.ts'],
    rules: {
      'no-restricted-syntax': [
        'error',
        { selector: 'ExportAllDeclaration', message: 'No export *: name what a package exports.' },
        { selector: "MemberExpression[object.name=/^(it|test|describe|suite)$/][property.name=/^(only|skip|skipIf|runIf|todo)$/]", message: 'No skip/only/todo left in tests: make the test fail instead of skipping.' },
        { selector: "CallExpression[callee.type='MemberExpression'][callee.property.name='skip'][arguments.length=0]", message: 'No ctx.skip(): a test that cannot run fails, naming what it needs.' },
      ],
    },
  },
);
