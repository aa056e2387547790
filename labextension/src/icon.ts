import { LabIcon } from '@jupyterlab/ui-components';

const svgstr = `<svg xmlns="http://www.w3.org/2000/svg" width="24" height="24" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <path d="M4 3h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2h-7.2L7.6 21.2A.6.6 0 0 1 6.6 20.7V17H4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2zm0 2v10h4.6v2.9L12 15h8V5H4z"/>
    <path d="M12 6.2l1.05 2.45L15.5 9.7l-2.45 1.05L12 13.2l-1.05-2.45L8.5 9.7l2.45-1.05z"/>
  </g>
</svg>`;

export const anciaIcon = new LabIcon({ name: 'ancia-jupyter:ancia', svgstr });
